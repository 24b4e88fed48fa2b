//! One DAG run: `/dags/{dag_id}/runs/{run_id}` with its state, dates, conf
//! and task instances (polling while the run is live), and its writes: clear
//! (after a dry-run preview), mark success/failed and delete, each sent
//! through the API with the user's token.

use axum::{
    extract::{Path, RawQuery, State},
    http::{Method, StatusCode},
    response::{IntoResponse, Redirect, Response},
    Extension,
};
use gust_shared::{
    db::{self, runs::DagRunRow, task_instances::listing::TaskInstanceRow, ui::run_pages},
    state::RunState,
};
use maud::{html, Markup};
use serde::{de::DeserializeOwned, Deserialize};
use serde_json::{json, Value};

use crate::ui::{
    api_call::{path, Api},
    error::UiError,
    layout::{self, Nav},
    session::{Session, UiForm},
};
use crate::AppState;

/// The API route of one run (PATCH marks it, DELETE deletes it).
const RUN_ROUTE: &str = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}";
/// The API route that clears a run.
const RUN_CLEAR_ROUTE: &str = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/clear";

/// Parses a query string into `T`; a malformed one is a 400 page.
pub(crate) fn query<T: DeserializeOwned>(raw: Option<&str>) -> Result<T, UiError> {
    serde_html_form::from_str(raw.unwrap_or(""))
        .map_err(|e| UiError::BadRequest(format!("the address's query is not what this page takes: {e}")))
}

/// A yes/no form or query value (`true`, `on`, `1`; absent or `false` is no); anything else is a 400.
pub(crate) fn flag(name: &str, value: Option<&str>) -> Result<bool, UiError> {
    match value.map(str::trim) {
        None | Some("") | Some("false") | Some("0") | Some("off") => Ok(false),
        Some("true") | Some("1") | Some("on") | Some("yes") => Ok(true),
        Some(other) => Err(UiError::BadRequest(format!("`{name}` must be true or false, got `{other}`"))),
    }
}

/// The status and sentence of an API refusal, to show beside the form; other failures stay errors.
pub(crate) fn refusal(error: UiError) -> Result<(StatusCode, String), UiError> {
    match error {
        UiError::Api(error) => Ok(error.status_and_detail()),
        other => Err(other),
    }
}

/// The run, or a 404 saying whether the DAG or the run is unknown.
pub(crate) async fn run_or_404(db: &impl db::GenericClient, dag_id: &str, run_id: &str) -> Result<DagRunRow, UiError> {
    if let Some(run) = db::runs::get(db, dag_id, run_id).await? {
        return Ok(run);
    }
    Err(UiError::NotFound(match db::dags::get(db, dag_id).await? {
        None => format!("there is no DAG `{dag_id}`; the DAG list shows the DAGs gust knows"),
        Some(_) => format!("DAG `{dag_id}` has no run `{run_id}`; its run list shows the runs it has"),
    }))
}

/// The UI address of a run.
pub(crate) fn run_href(dag_id: &str, run_id: &str) -> String {
    path(&["dags", dag_id, "runs", run_id])
}

/// The UI address of a task instance (`map_index` -1 for an unmapped one).
pub(crate) fn task_href(dag_id: &str, run_id: &str, task_id: &str, map_index: i32) -> String {
    let base = path(&["dags", dag_id, "runs", run_id, "tasks", task_id]);
    if map_index >= 0 {
        format!("{base}?map_index={map_index}")
    } else {
        base
    }
}

/// The trail from the DAG list to a run, and to a task when given.
pub(crate) fn crumbs(dag_id: &str, run_id: &str, task: Option<&str>) -> Markup {
    html! {
        nav.crumbs aria-label="Breadcrumb" {
            a href="/dags" { "DAGs" } " / "
            a href=(path(&["dags", dag_id])) { (dag_id) } " / "
            @if let Some(task) = task {
                a href=(run_href(dag_id, run_id)) { (run_id) } " / " span { (task) }
            } @else {
                span { (run_id) }
            }
        }
    }
}

/// The list of task instances a clear would reset, from the API's dry-run answer.
pub(crate) fn clear_preview_list(dag_id: &str, run_id: &str, answer: &Value) -> Markup {
    let empty = Vec::new();
    let tis = answer["task_instances"].as_array().unwrap_or(&empty);
    html! {
        @if tis.is_empty() {
            p.notice { "Nothing to clear: no task instance of this selection has finished." }
        } @else {
            p { "These " (tis.len()) " task instances will be reset to no status and run again:" }
        }
        ul #clear-preview {
            @for ti in tis {
                @let task_id = ti["task_id"].as_str().unwrap_or("");
                @let map_index = ti["map_index"].as_i64().and_then(|m| i32::try_from(m).ok()).unwrap_or(-1);
                li {
                    a href=(task_href(dag_id, run_id, task_id, map_index)) { (task_id) }
                    @if map_index >= 0 { " [" (map_index) "]" }
                    " " (layout::state_badge(ti["state"].as_str()))
                }
            }
        }
    }
}

/// A clear preview: the API's dry-run answer to `POST api_path` with `body`,
/// with the status and sentence to show (`refused`, a failed clear's, wins
/// over the preview's own refusal).
pub(crate) async fn dry_run(
    api: &Api,
    session: &Session,
    api_path: &str,
    body: &Value,
    refused: Option<(StatusCode, &str)>,
) -> Result<(StatusCode, Option<String>, Option<Value>), UiError> {
    let (status, alert, answer) = match api.call(session, Method::POST, api_path, Some(body)).await {
        Ok(reply) => (StatusCode::OK, None, Some(reply.json)),
        Err(error) => {
            let (status, detail) = refusal(error)?;
            (status, Some(detail), None)
        }
    };
    Ok(match refused {
        Some((status, detail)) => (status, Some(detail.to_string()), answer),
        None => (status, alert, answer),
    })
}

/// `GET /dags/{dag_id}/runs/{run_id}`: the run page.
pub(crate) async fn page(
    State(state): State<AppState>,
    session: Session,
    Path((dag_id, run_id)): Path<(String, String)>,
) -> Result<Markup, UiError> {
    run_page(&state, &session, &dag_id, &run_id, None).await
}

/// `GET /dags/{dag_id}/runs/{run_id}/live`: the run's state and task table, polling while the run is live.
pub(crate) async fn live(
    State(state): State<AppState>,
    _session: Session,
    Path((dag_id, run_id)): Path<(String, String)>,
) -> Result<Markup, UiError> {
    let db = state.db().await?;
    let run = run_or_404(&db, &dag_id, &run_id).await?;
    let tis = db::task_instances::listing::list_for_run(&db, run.id).await?;
    Ok(live_section(&run, &tis))
}

/// The run page, with `alert` (a refused write's sentence) above it.
async fn run_page(
    state: &AppState,
    session: &Session,
    dag_id: &str,
    run_id: &str,
    alert: Option<&str>,
) -> Result<Markup, UiError> {
    let db = state.db().await?;
    let run = run_or_404(&db, dag_id, run_id).await?;
    let tis = db::task_instances::listing::list_for_run(&db, run.id).await?;
    let version = run_pages::version_number(&db, run.dag_version_id).await?;
    let here = run_href(dag_id, run_id);
    let content = html! {
        (crumbs(dag_id, run_id, None))
        h1 { "Run " (run_id) }
        (layout::alert(alert))
        div.actions {
            @if session.may(Method::POST, RUN_CLEAR_ROUTE) {
                a #clear-run-link.button href={ (here) "/clear" } { "Clear…" }
            }
            @if session.may(Method::PATCH, RUN_ROUTE) {
                @for (id, value, label) in [("mark-run-success", "success", "Mark success"), ("mark-run-failed", "failed", "Mark failed")] {
                    form.inline id=(id) method="post" action={ (here) "/mark" } {
                        (layout::csrf_field(session))
                        input type="hidden" name="state" value=(value);
                        button.secondary type="submit" { (label) }
                    }
                }
            }
            @if session.may(Method::DELETE, RUN_ROUTE) {
                form.inline #delete-run method="post" action={ (here) "/delete" } {
                    (layout::csrf_field(session))
                    label.confirm { input type="checkbox" name="confirm" value="yes" required; " sure" }
                    button.danger type="submit" { "Delete run" }
                }
            }
        }
        (live_section(&run, &tis))
        h2 { "Details" }
        dl.facts {
            dt { "DAG version" }
            dd {
                @match version {
                    Some(n) => a href={ (path(&["dags", dag_id, "code"])) "?version=" (n) } { "version " (n) },
                    None => span.muted { "unknown" },
                }
            }
            dt { "Triggered by" } dd { (run.triggered_by) }
            @if let Some(backfill) = run.backfill_id { dt { "Backfill" } dd { "#" (backfill) } }
            dt { "Note" }
            dd { @match &run.note { Some(note) => span.note { (note) }, None => span.muted { "none" } } }
        }
        h2 { "Conf" }
        (layout::json_block(&run.conf))
    };
    Ok(layout::page(session, &format!("{run_id} · {dag_id}"), Nav::Dags, content))
}

/// True while a run may still change on its own.
fn run_is_live(state: RunState) -> bool {
    matches!(state, RunState::Queued | RunState::Running)
}

/// The state, dates and task instances of a run; polls itself every 3 s while the run is live.
fn live_section(run: &DagRunRow, tis: &[TaskInstanceRow]) -> Markup {
    let live_href = format!("{}/live", run_href(&run.dag_id, &run.run_id));
    let live = run_is_live(run.state);
    html! {
        section #run-live hx-get=[live.then_some(&live_href)] hx-trigger=[live.then_some("every 3s")] hx-swap=[live.then_some("outerHTML")] {
            dl.facts {
                dt { "State" } dd #run-state { (layout::state_badge(Some(run.state.as_str()))) }
                dt { "Run type" } dd { (run.run_type) }
                dt { "Queued" } dd { (layout::time(Some(run.queued_at))) }
                dt { "Started" } dd { (layout::time(run.start_date)) }
                dt { "Ended" } dd { (layout::time(run.end_date)) }
                dt { "Duration" } dd { (layout::duration(layout::seconds_between(run.start_date, run.end_date))) }
                dt { "Logical date" } dd { (layout::time(run.logical_date)) }
                dt { "Data interval" }
                dd {
                    @if run.data_interval_start.is_none() && run.data_interval_end.is_none() {
                        span.muted { "none (a manual run without a logical date)" }
                    } @else {
                        (layout::time(run.data_interval_start)) " – " (layout::time(run.data_interval_end))
                    }
                }
                dt { "Run after" } dd { (layout::time(Some(run.run_after))) }
            }
            h2 { "Task instances" }
            @if tis.is_empty() {
                p.muted { "No task instances yet: the scheduler creates them when the run starts." }
            } @else {
                table.tis {
                    thead { tr { th { "Task" } th { "Map index" } th { "State" } th { "Try" } th { "Started" } th { "Ended" } th { "Duration" } } }
                    tbody {
                        @for ti in tis {
                            tr {
                                td { a href=(task_href(&run.dag_id, &run.run_id, &ti.task_id, ti.map_index)) { (ti.task_id) } }
                                td { @if ti.map_index >= 0 { (ti.map_index) } }
                                td { (layout::state_badge(Some(ti.state.as_str()))) }
                                td { (ti.try_number) }
                                td { (layout::time(ti.start_date)) }
                                td { (layout::time(ti.end_date)) }
                                td { (layout::duration(layout::seconds_between(ti.start_date, ti.end_date))) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The query of the clear preview and the fields of its confirm form.
#[derive(Deserialize, Default)]
pub(crate) struct ClearChoice {
    only_failed: Option<String>,
}

/// `GET /dags/{dag_id}/runs/{run_id}/clear?only_failed=`: what a clear would reset (the API's dry run).
pub(crate) async fn clear_preview(
    Extension(api): Extension<Api>,
    session: Session,
    Path((dag_id, run_id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, UiError> {
    let choice: ClearChoice = query(raw.as_deref())?;
    let only_failed = flag("only_failed", choice.only_failed.as_deref())?;
    clear_page(&api, &session, &dag_id, &run_id, only_failed, None).await
}

/// `POST /dags/{dag_id}/runs/{run_id}/clear`: clears the run through the API, then back to the run.
pub(crate) async fn clear(
    Extension(api): Extension<Api>,
    Path((dag_id, run_id)): Path<(String, String)>,
    UiForm { session, form }: UiForm<ClearChoice>,
) -> Result<Response, UiError> {
    let only_failed = flag("only_failed", form.only_failed.as_deref())?;
    let api_path = path(&["api", "v2", "dags", &dag_id, "dagRuns", &run_id, "clear"]);
    let body = json!({"dry_run": false, "only_failed": only_failed});
    match api.call(&session, Method::POST, &api_path, Some(&body)).await {
        Ok(_) => Ok(Redirect::to(&run_href(&dag_id, &run_id)).into_response()),
        Err(error) => {
            let (status, detail) = refusal(error)?;
            clear_page(&api, &session, &dag_id, &run_id, only_failed, Some((status, &detail))).await
        }
    }
}

/// The clear preview page; `refused` is a failed clear's status and sentence.
async fn clear_page(
    api: &Api,
    session: &Session,
    dag_id: &str,
    run_id: &str,
    only_failed: bool,
    refused: Option<(StatusCode, &str)>,
) -> Result<Response, UiError> {
    let api_path = path(&["api", "v2", "dags", dag_id, "dagRuns", run_id, "clear"]);
    let body = json!({"dry_run": true, "only_failed": only_failed});
    let (status, alert, answer) = dry_run(api, session, &api_path, &body, refused).await?;
    let here = run_href(dag_id, run_id);
    let content = html! {
        (crumbs(dag_id, run_id, None))
        h1 { "Clear run " (run_id) }
        (layout::alert(alert.as_deref()))
        form.actions method="get" action={ (here) "/clear" } {
            label { input type="checkbox" name="only_failed" value="true" checked[only_failed]; " Only failed task instances" }
            button.secondary type="submit" { "Update preview" }
        }
        @if let Some(answer) = &answer {
            (clear_preview_list(dag_id, run_id, answer))
            @if answer["task_instances"].as_array().is_some_and(|tis| !tis.is_empty()) {
                form #confirm-clear method="post" action={ (here) "/clear" } {
                    (layout::csrf_field(session))
                    input type="hidden" name="only_failed" value=(only_failed);
                    button type="submit" { "Clear and run again" }
                }
            }
        }
        p { a href=(here) { "Back to the run" } }
    };
    Ok((status, layout::page(session, &format!("Clear {run_id}"), Nav::Dags, content)).into_response())
}

/// The field of the mark forms.
#[derive(Deserialize)]
pub(crate) struct MarkForm {
    state: String,
}

/// `POST /dags/{dag_id}/runs/{run_id}/mark` (`state` = success|failed): sets the run's state through the API.
pub(crate) async fn mark(
    State(state): State<AppState>,
    Extension(api): Extension<Api>,
    Path((dag_id, run_id)): Path<(String, String)>,
    UiForm { session, form }: UiForm<MarkForm>,
) -> Result<Response, UiError> {
    let api_path = path(&["api", "v2", "dags", &dag_id, "dagRuns", &run_id]);
    let body = json!({"state": form.state});
    let result = api.call(&session, Method::PATCH, &api_path, Some(&body)).await;
    after_write(&state, &session, &dag_id, &run_id, result.map(|_| run_href(&dag_id, &run_id))).await
}

/// The field of the delete form (the browser asks for the checkbox; the server does not).
#[derive(Deserialize)]
pub(crate) struct DeleteForm {
    #[serde(rename = "confirm")]
    _confirm: Option<String>,
}

/// `POST /dags/{dag_id}/runs/{run_id}/delete`: deletes the run through the API, then to the DAG.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Extension(api): Extension<Api>,
    Path((dag_id, run_id)): Path<(String, String)>,
    UiForm { session, .. }: UiForm<DeleteForm>,
) -> Result<Response, UiError> {
    let api_path = path(&["api", "v2", "dags", &dag_id, "dagRuns", &run_id]);
    let result = api.call(&session, Method::DELETE, &api_path, None).await;
    after_write(&state, &session, &dag_id, &run_id, result.map(|_| path(&["dags", &dag_id]))).await
}

/// A 303 to `Ok`'s address, or the run page with the API's refusal and status.
async fn after_write(
    state: &AppState,
    session: &Session,
    dag_id: &str,
    run_id: &str,
    result: Result<String, UiError>,
) -> Result<Response, UiError> {
    match result {
        Ok(to) => Ok(Redirect::to(&to).into_response()),
        Err(error) => {
            let (status, detail) = refusal(error)?;
            let page = run_page(state, session, dag_id, run_id, Some(&detail)).await?;
            Ok((status, page).into_response())
        }
    }
}
