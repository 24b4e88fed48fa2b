//! One task instance: `/dags/{dag_id}/runs/{run_id}/tasks/{task_id}` with
//! its tries, rendered fields, XComs and the log of the selected try, and its
//! writes (clear after a dry-run preview, mark success/failed).
//!
//! The log of a try (its pages, fragments, live tail and raw download) is
//! rendered by the `log` module, whose routes are re-exported here.

mod log;

pub(crate) use self::log::{log_download, log_fragment};

use axum::{
    extract::{Path, RawQuery, State},
    http::{Method, StatusCode},
    response::{IntoResponse, Redirect, Response},
    Extension,
};
use gust_shared::{
    db::{
        self,
        task_instances::listing::{self, TaskInstanceRow, TryRow},
        ui::run_pages::{self, TaskInstanceBrief},
        xcom::XcomEntry,
    },
    state::TaskState,
};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Value};

use self::log::{log_lines, log_next, log_page, try_is_live, LogView};
use super::run::{clear_preview_list, crumbs, dry_run, flag, query, refusal, run_or_404, task_href};
use crate::ui::{
    api_call::{path, query_value, Api},
    error::UiError,
    layout::{self, Nav},
    session::{Session, UiForm},
};
use crate::AppState;

/// The API route that marks a task instance.
const TI_ROUTE: &str = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}";
/// The API route that clears task instances.
const CLEAR_ROUTE: &str = "/api/v2/dags/{dag_id}/clearTaskInstances";

/// The query of the task page and its log routes, as sent (checked by [`TaskQuery::checked`]).
#[derive(Deserialize, Default)]
pub(crate) struct TaskQuery {
    map_index: Option<String>,
    #[serde(rename = "try")]
    try_number: Option<String>,
    after: Option<String>,
    tail: Option<String>,
    ts: Option<String>,
}

/// [`TaskQuery`] checked.
struct Checked {
    /// The map index asked for, if any.
    map_index: Option<i32>,
    /// The try asked for; the latest when none.
    try_number: Option<i32>,
    /// The log line after which to start.
    after: i64,
    /// True for the live tail's polls.
    tail: bool,
    /// Show each line's time.
    ts: bool,
}

impl TaskQuery {
    /// The values, or a 400 naming the bad one.
    fn checked(raw: Option<&str>) -> Result<Checked, UiError> {
        let q: TaskQuery = query(raw)?;
        Ok(Checked {
            map_index: number(&q.map_index, "map_index", -1)?,
            try_number: number(&q.try_number, "try", 1)?,
            after: number(&q.after, "after", 0)?.unwrap_or(0),
            tail: flag("tail", q.tail.as_deref())?,
            ts: flag("ts", q.ts.as_deref())?,
        })
    }
}

/// An optional integer parameter of at least `min`; empty counts as absent.
fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display>(
    value: &Option<String>,
    name: &str,
    min: T,
) -> Result<Option<T>, UiError> {
    let Some(text) = value.as_deref().map(str::trim).filter(|t| !t.is_empty()) else { return Ok(None) };
    match text.parse::<T>() {
        Ok(n) if n >= min => Ok(Some(n)),
        _ => Err(UiError::BadRequest(format!("`{name}` must be a whole number of at least {min}, got `{text}`"))),
    }
}

/// The task instance, or a 404 saying which of DAG, run or task is unknown.
async fn ti_or_404(
    db: &impl db::GenericClient,
    dag_id: &str,
    run_id: &str,
    task_id: &str,
    map_index: i32,
) -> Result<TaskInstanceRow, UiError> {
    if let Some(ti) = listing::get(db, dag_id, run_id, task_id, map_index).await? {
        return Ok(ti);
    }
    run_or_404(db, dag_id, run_id).await?;
    Err(missing_ti(dag_id, run_id, task_id, map_index))
}

/// The 404 of a task instance the run does not have.
fn missing_ti(dag_id: &str, run_id: &str, task_id: &str, map_index: i32) -> UiError {
    let mapped = if map_index >= 0 { format!(" with map index {map_index}") } else { String::new() };
    UiError::NotFound(format!(
        "run `{run_id}` of DAG `{dag_id}` has no task instance `{task_id}`{mapped}; the run page lists the ones it has"
    ))
}

/// The selected try (the latest when none is asked for), or a 404 when the task has no such try.
fn selected_try(ti: &TaskInstanceRow, asked: Option<i32>) -> Result<Option<i32>, UiError> {
    match asked {
        None => Ok((ti.try_number > 0).then_some(ti.try_number)),
        Some(n) if n <= ti.try_number => Ok(Some(n)),
        Some(n) => Err(UiError::NotFound(match ti.try_number {
            0 => format!("task `{}` has not run yet, so it has no try {n}", ti.task_id),
            last => format!("task `{}` has no try {n}; its tries are 1 to {last}", ti.task_id),
        })),
    }
}

/// One try as the tries table shows it.
struct TryView {
    number: i32,
    state: TaskState,
    start_date: Option<chrono::DateTime<chrono::Utc>>,
    end_date: Option<chrono::DateTime<chrono::Utc>>,
    hostname: Option<String>,
    pid: Option<i32>,
    exit_code: Option<i32>,
    failure_reason: Option<String>,
}

/// Every try of `ti`, oldest first: the finished ones from their history, then the current one while it has none.
fn tries_of(ti: &TaskInstanceRow, finished: Vec<TryRow>) -> Vec<TryView> {
    let current_recorded = finished.iter().any(|t| t.try_number == ti.try_number);
    let mut tries: Vec<TryView> = finished
        .into_iter()
        .map(|t| TryView {
            number: t.try_number,
            state: t.state,
            start_date: t.start_date,
            end_date: Some(t.end_date),
            hostname: t.hostname,
            pid: if t.try_number == ti.try_number { ti.pid } else { None },
            exit_code: t.exit_code,
            failure_reason: t.failure_reason,
        })
        .collect();
    if ti.try_number > 0 && !current_recorded {
        tries.push(TryView {
            number: ti.try_number,
            state: ti.state,
            start_date: ti.start_date,
            end_date: ti.end_date,
            hostname: ti.hostname.clone(),
            pid: ti.pid,
            exit_code: ti.exit_code,
            failure_reason: ti.failure_reason.clone(),
        });
    }
    tries
}

/// The rendered fields of `ti` as the API shows them (secret variables' values masked), if it has any.
async fn rendered_fields(api: &Api, session: &Session, ti: &TaskInstanceRow) -> Result<Option<Value>, UiError> {
    if ti.rendered_fields.as_ref().and_then(Value::as_object).is_none_or(|fields| fields.is_empty()) {
        return Ok(None);
    }
    let listing = format!(
        "{}?task_id={}&map_index={}",
        path(&["api", "v2", "dags", &ti.dag_id, "dagRuns", &ti.run_id, "taskInstances"]),
        query_value(&ti.task_id),
        ti.map_index
    );
    let reply = api.call(session, Method::GET, &listing, None).await?;
    Ok(reply.json["task_instances"].get(0).and_then(|ti| ti.get("rendered_fields")).cloned())
}

/// `GET /dags/{dag_id}/runs/{run_id}/tasks/{task_id}?map_index&try&after&ts`: the task instance page
/// (for a mapped task without `map_index`, the list of its instances).
pub(crate) async fn page(
    State(state): State<AppState>,
    Extension(api): Extension<Api>,
    session: Session,
    Path((dag_id, run_id, task_id)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Markup, UiError> {
    let asked = TaskQuery::checked(raw.as_deref())?;
    task_page(&state, &api, &session, (&dag_id, &run_id, &task_id), &asked, None).await
}

/// The task page, with `alert` (a refused write's sentence) above it.
async fn task_page(
    state: &AppState,
    api: &Api,
    session: &Session,
    (dag_id, run_id, task_id): (&str, &str, &str),
    asked: &Checked,
    alert: Option<&str>,
) -> Result<Markup, UiError> {
    let db = state.db().await?;
    let ti = match asked.map_index {
        Some(map_index) => ti_or_404(&db, dag_id, run_id, task_id, map_index).await?,
        None => match listing::get(&db, dag_id, run_id, task_id, -1).await? {
            Some(ti) => ti,
            None => {
                let run = run_or_404(&db, dag_id, run_id).await?;
                let instances = run_pages::instances_of_task(&db, run.id, task_id).await?;
                if instances.is_empty() {
                    return Err(missing_ti(dag_id, run_id, task_id, -1));
                }
                return Ok(mapped_list(session, (dag_id, run_id, task_id), &instances, alert));
            }
        },
    };
    let try_number = selected_try(&ti, asked.try_number)?;
    let finished = listing::tries(&db, ti.id).await?;
    let log = match try_number {
        Some(n) => Some((n, log_page(&db, &ti, n, asked.after).await?)),
        None => None,
    };
    let xcoms = db::xcom::list(&db, ti.id).await?;
    drop(db);
    let rendered = rendered_fields(api, session, &ti).await?;
    let tries = tries_of(&ti, finished);
    let base = path(&["dags", dag_id, "runs", run_id, "tasks", task_id]);
    let here = task_href(dag_id, run_id, task_id, ti.map_index);
    let map_field = (ti.map_index >= 0).then(|| ti.map_index.to_string());
    let title = if ti.map_index >= 0 { format!("{task_id} [{}]", ti.map_index) } else { task_id.to_string() };
    let content = html! {
        (crumbs(dag_id, run_id, Some(&title)))
        h1 { "Task " (title) }
        (layout::alert(alert))
        div.actions {
            @if session.may(Method::POST, CLEAR_ROUTE) {
                @let clear = format!("{base}/clear{}", map_field.as_ref().map_or(String::new(), |m| format!("?map_index={m}")));
                a #clear-task-link.button href=(clear) { "Clear…" }
            }
            @if session.may(Method::PATCH, TI_ROUTE) {
                @for (id, value, label) in [("mark-task-success", "success", "Mark success"), ("mark-task-failed", "failed", "Mark failed")] {
                    form.inline id=(id) method="post" action={ (base) "/mark" } {
                        (layout::csrf_field(session))
                        input type="hidden" name="state" value=(value);
                        @if let Some(m) = &map_field { input type="hidden" name="map_index" value=(m); }
                        button.secondary type="submit" { (label) }
                    }
                }
            }
        }
        dl.facts {
            dt { "State" } dd #ti-state { (layout::state_badge(Some(ti.state.as_str()))) }
            dt { "Operator" } dd { (ti.operator) }
            dt { "Queue" } dd { (ti.queue) }
            dt { "Pool" } dd { (ti.pool) @if ti.pool_slots != 1 { " (" (ti.pool_slots) " slots)" } }
            dt { "Map index" } dd { @if ti.map_index >= 0 { (ti.map_index) } @else { span.muted { "not mapped" } } }
            dt { "Try" } dd { (ti.try_number) " (retries allowed: " (ti.max_tries) ")" }
            @if let Some(at) = ti.next_retry_at {
                dt { @if ti.state == TaskState::UpForReschedule { "Next poke" } @else { "Next try" } }
                dd { (layout::time(Some(at))) }
            }
            dt { "Priority weight" } dd { (ti.priority_weight) }
        }
        h2 { "Tries" }
        @if tries.is_empty() {
            p.muted { "No tries yet." }
        } @else {
            table #tries {
                thead { tr {
                    th { "Try" } th { "State" } th { "Started" } th { "Ended" } th { "Duration" }
                    th { "Worker" } th { "PID" } th { "Exit code" } th { "Failure reason" }
                } }
                tbody {
                    @for t in &tries {
                        tr.try {
                            td { a href={ (base) "?" (LogView { base: &base, map_index: ti.map_index, try_number: t.number, ts: false }.query(0, false)) "#log" } { (t.number) } }
                            td { (layout::state_badge(Some(t.state.as_str()))) }
                            td { (layout::time(t.start_date)) }
                            td { (layout::time(t.end_date)) }
                            td { (layout::duration(layout::seconds_between(t.start_date, t.end_date))) }
                            td.worker { @if let Some(h) = &t.hostname { (h) } }
                            td.pid { @if let Some(p) = t.pid { (p) } }
                            td.exit-code { @if let Some(code) = t.exit_code { (code) } }
                            td.failure-reason { @if let Some(why) = &t.failure_reason { (why) } }
                        }
                    }
                }
            }
        }
        h2 { "Log" }
        @match &log {
            None => p.muted { "This task has not run yet, so it has no log." },
            Some((n, (lines, more))) => {
                @let view = LogView { base: &base, map_index: ti.map_index, try_number: *n, ts: asked.ts };
                nav.try-tabs aria-label="Tries" {
                    @for k in 1..=ti.try_number {
                        a href=(LogView { try_number: k, ..view }.page(0)) aria-current=[(k == *n).then_some("page")] { "Try " (k) }
                    }
                }
                p.log-tools {
                    a #log-download href=(view.download()) download { "Download raw log" }
                    " · "
                    a href=(LogView { ts: !asked.ts, ..view }.page(0)) { @if asked.ts { "Hide times" } @else { "Show times" } }
                    @if asked.after > 0 { " · " a href=(view.page(0)) { "From the start" } }
                }
                div #log.log role="log" {
                    @if lines.is_empty() && !try_is_live(&ti, *n) { p.muted { "(no output)" } }
                    (log_lines(lines, asked.ts))
                    (log_next(&view, lines.last().map_or(asked.after, |l| l.id), *more, try_is_live(&ti, *n), false))
                }
            }
        }
        h2 { "Rendered fields" }
        @match &rendered {
            Some(Value::Object(fields)) => {
                table.rendered {
                    tbody {
                        @for (name, value) in fields {
                            tr {
                                th scope="row" { (name) }
                                td { @match value { Value::String(text) => pre.rendered { (text) }, other => (layout::json_block(other)) } }
                            }
                        }
                    }
                }
            }
            _ => p.muted { "Nothing rendered yet: fields are rendered when a try is dispatched." },
        }
        h2 { "XComs" }
        (xcom_table(&xcoms))
        p { a href=(here) { "Permalink" } }
    };
    Ok(layout::page(session, &format!("{title} · {run_id} · {dag_id}"), Nav::Dags, content))
}

/// The XComs of a task instance, values as escaped JSON.
fn xcom_table(xcoms: &[XcomEntry]) -> Markup {
    html! {
        @if xcoms.is_empty() {
            p.muted { "No XComs." }
        } @else {
            table.xcoms {
                thead { tr { th { "Key" } th { "Try" } th { "Written" } th { "Value" } } }
                tbody {
                    @for x in xcoms {
                        tr { td { (x.key) } td { (x.try_number) } td { (layout::time(Some(x.timestamp))) } td { (layout::json_block(&x.value)) } }
                    }
                }
            }
        }
    }
}

/// The instances of a mapped task, each linking to its page.
fn mapped_list(
    session: &Session,
    (dag_id, run_id, task_id): (&str, &str, &str),
    instances: &[TaskInstanceBrief],
    alert: Option<&str>,
) -> Markup {
    let content = html! {
        (crumbs(dag_id, run_id, Some(task_id)))
        h1 { "Task " (task_id) " (mapped, " (instances.len()) " instances)" }
        (layout::alert(alert))
        table.mapped {
            thead { tr { th { "Map index" } th { "State" } th { "Try" } th { "Started" } th { "Ended" } th { "Duration" } } }
            tbody {
                @for i in instances {
                    tr {
                        td { a.map-index href=(task_href(dag_id, run_id, task_id, i.map_index)) { (i.map_index) } }
                        td { (layout::state_badge(Some(i.state.as_str()))) }
                        td { (i.try_number) }
                        td { (layout::time(i.start_date)) }
                        td { (layout::time(i.end_date)) }
                        td { (layout::duration(layout::seconds_between(i.start_date, i.end_date))) }
                    }
                }
            }
        }
    };
    layout::page(session, &format!("{task_id} · {run_id} · {dag_id}"), Nav::Dags, content)
}

/// `GET …/tasks/{task_id}/mapped/{map_index}`: 303 to the task page with `?map_index=`.
pub(crate) async fn mapped_redirect(
    _session: Session,
    Path((dag_id, run_id, task_id, map_index)): Path<(String, String, String, String)>,
) -> Result<Redirect, UiError> {
    let map_index = number(&Some(map_index), "map_index", 0)?.unwrap_or(0);
    Ok(Redirect::to(&task_href(&dag_id, &run_id, &task_id, map_index)))
}

/// The query of the task clear preview and the fields of its confirm form.
#[derive(Deserialize, Default)]
pub(crate) struct TaskClearChoice {
    map_index: Option<String>,
    only_failed: Option<String>,
    include_upstream: Option<String>,
    include_downstream: Option<String>,
}

/// [`TaskClearChoice`] checked.
struct ClearOptions {
    map_index: Option<i32>,
    only_failed: bool,
    upstream: bool,
    downstream: bool,
}

impl TaskClearChoice {
    /// The options, or a 400 naming the bad value.
    fn checked(&self) -> Result<ClearOptions, UiError> {
        Ok(ClearOptions {
            map_index: number(&self.map_index, "map_index", 0)?,
            only_failed: flag("only_failed", self.only_failed.as_deref())?,
            upstream: flag("include_upstream", self.include_upstream.as_deref())?,
            downstream: flag("include_downstream", self.include_downstream.as_deref())?,
        })
    }
}

impl ClearOptions {
    /// The body of `POST …/clearTaskInstances` for `task_id` in `run_id`.
    fn body(&self, task_id: &str, run_id: &str, dry_run: bool) -> Value {
        let task = match self.map_index {
            Some(m) => json!([task_id, m]),
            None => json!(task_id),
        };
        json!({
            "dry_run": dry_run,
            "dag_run_id": run_id,
            "task_ids": [task],
            "only_failed": self.only_failed,
            "include_upstream": self.upstream,
            "include_downstream": self.downstream,
            "reset_dag_runs": true,
        })
    }
}

/// `GET …/tasks/{task_id}/clear?map_index&only_failed&include_upstream&include_downstream`: what a clear would reset.
pub(crate) async fn clear_preview(
    Extension(api): Extension<Api>,
    session: Session,
    Path((dag_id, run_id, task_id)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, UiError> {
    let options = query::<TaskClearChoice>(raw.as_deref())?.checked()?;
    task_clear_page(&api, &session, (&dag_id, &run_id, &task_id), &options, None).await
}

/// `POST …/tasks/{task_id}/clear`: clears through the API, then back to the task.
pub(crate) async fn clear(
    Extension(api): Extension<Api>,
    Path((dag_id, run_id, task_id)): Path<(String, String, String)>,
    UiForm { session, form }: UiForm<TaskClearChoice>,
) -> Result<Response, UiError> {
    let options = form.checked()?;
    let api_path = path(&["api", "v2", "dags", &dag_id, "clearTaskInstances"]);
    let body = options.body(&task_id, &run_id, false);
    match api.call(&session, Method::POST, &api_path, Some(&body)).await {
        Ok(_) => {
            let to = task_href(&dag_id, &run_id, &task_id, options.map_index.unwrap_or(-1));
            Ok(Redirect::to(&to).into_response())
        }
        Err(error) => {
            let refused = refusal(error)?;
            let refused = Some((refused.0, refused.1.as_str()));
            task_clear_page(&api, &session, (&dag_id, &run_id, &task_id), &options, refused).await
        }
    }
}

/// The task clear preview page; `refused` is a failed clear's status and sentence.
async fn task_clear_page(
    api: &Api,
    session: &Session,
    (dag_id, run_id, task_id): (&str, &str, &str),
    options: &ClearOptions,
    refused: Option<(StatusCode, &str)>,
) -> Result<Response, UiError> {
    let api_path = path(&["api", "v2", "dags", dag_id, "clearTaskInstances"]);
    let body = options.body(task_id, run_id, true);
    let (status, alert, answer) = dry_run(api, session, &api_path, &body, refused).await?;
    let base = path(&["dags", dag_id, "runs", run_id, "tasks", task_id]);
    let title = match options.map_index {
        Some(m) => format!("{task_id} [{m}]"),
        None => task_id.to_string(),
    };
    let map_field = options.map_index.map(|m| m.to_string());
    let checks = [
        ("include_upstream", options.upstream, "With upstream tasks"),
        ("include_downstream", options.downstream, "With downstream tasks"),
        ("only_failed", options.only_failed, "Only failed ones"),
    ];
    let content = html! {
        (crumbs(dag_id, run_id, Some(&title)))
        h1 { "Clear task " (title) }
        (layout::alert(alert.as_deref()))
        form.actions method="get" action={ (base) "/clear" } {
            @if let Some(m) = &map_field { input type="hidden" name="map_index" value=(m); }
            @for (name, on, label) in checks {
                label { input type="checkbox" name=(name) value="true" checked[on]; " " (label) }
            }
            button.secondary type="submit" { "Update preview" }
        }
        @if let Some(answer) = &answer {
            (clear_preview_list(dag_id, run_id, answer))
            @if answer["task_instances"].as_array().is_some_and(|tis| !tis.is_empty()) {
                form #confirm-clear method="post" action={ (base) "/clear" } {
                    (layout::csrf_field(session))
                    @if let Some(m) = &map_field { input type="hidden" name="map_index" value=(m); }
                    @for (name, on, _) in checks { input type="hidden" name=(name) value=(on); }
                    button type="submit" { "Clear and run again" }
                }
            }
        }
        p { a href=(task_href(dag_id, run_id, task_id, options.map_index.unwrap_or(-1))) { "Back to the task" } }
    };
    Ok((status, layout::page(session, &format!("Clear {title}"), Nav::Dags, content)).into_response())
}

/// The fields of the task mark forms.
#[derive(Deserialize)]
pub(crate) struct TaskMarkForm {
    state: String,
    map_index: Option<String>,
}

/// `POST …/tasks/{task_id}/mark` (`state` = success|failed, optional `map_index`): sets the state through the API.
pub(crate) async fn mark(
    State(state): State<AppState>,
    Extension(api): Extension<Api>,
    Path((dag_id, run_id, task_id)): Path<(String, String, String)>,
    UiForm { session, form }: UiForm<TaskMarkForm>,
) -> Result<Response, UiError> {
    let map_index = number(&form.map_index, "map_index", 0)?;
    let mut api_path = path(&["api", "v2", "dags", &dag_id, "dagRuns", &run_id, "taskInstances", &task_id]);
    if let Some(m) = map_index {
        api_path.push_str(&format!("?map_index={m}"));
    }
    let body = json!({"new_state": form.state});
    match api.call(&session, Method::PATCH, &api_path, Some(&body)).await {
        Ok(_) => Ok(Redirect::to(&task_href(&dag_id, &run_id, &task_id, map_index.unwrap_or(-1))).into_response()),
        Err(error) => {
            let (status, detail) = refusal(error)?;
            let asked = Checked { map_index, try_number: None, after: 0, tail: false, ts: false };
            let page = task_page(&state, &api, &session, (&dag_id, &run_id, &task_id), &asked, Some(&detail)).await?;
            Ok((status, page).into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_numbers_are_bad_requests_and_empty_ones_absent() {
        assert!(matches!(number::<i32>(&Some("x".into()), "try", 1), Err(UiError::BadRequest(_))));
        assert!(matches!(number::<i32>(&Some("0".into()), "try", 1), Err(UiError::BadRequest(_))));
        assert!(matches!(number::<i64>(&Some("-3".into()), "after", 0), Err(UiError::BadRequest(_))));
        assert_eq!(number::<i32>(&Some(" ".into()), "try", 1).unwrap(), None);
        assert_eq!(number::<i32>(&Some("4".into()), "map_index", -1).unwrap(), Some(4));
    }
}
