//! `/dags`: every DAG with its tags, owners, schedule, next run, pause
//! toggle and the states of its last runs; search, tag filter, pages.

use std::collections::HashMap;

use axum::{
    extract::{Path, Query, State},
    http::Method,
    response::{IntoResponse, Redirect, Response},
    Extension,
};
use chrono::Utc;
use gust_shared::db::{
    self,
    dags::{DagFilter, DEFAULT_ORDER},
    filters::TextMatch,
    ui::overview::{self, RecentRun},
};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::json;

use crate::{
    ui::{
        api_call::{path, query_value, Api},
        error::UiError,
        layout::{self, Nav},
        session::{Session, UiForm},
    },
    AppState,
};

/// DAGs on one page of the list.
const PAGE_SIZE: i64 = 25;

/// Recent runs shown as bars per DAG.
const RECENT_RUNS: i64 = 14;

/// The list's query string.
#[derive(Deserialize, Default)]
pub(crate) struct DagsQuery {
    /// Substring of the DAG id.
    #[serde(default)]
    q: String,
    /// Only DAGs with this tag.
    #[serde(default)]
    tag: String,
    /// `active`, `paused` or empty for all.
    #[serde(default)]
    show: String,
    /// First DAG shown.
    #[serde(default)]
    offset: i64,
}

impl DagsQuery {
    fn link(&self, offset: i64) -> String {
        format!(
            "/dags?q={}&tag={}&show={}&offset={offset}",
            query_value(&self.q),
            query_value(&self.tag),
            query_value(&self.show)
        )
    }
}

/// `GET /dags`.
pub(crate) async fn page(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<DagsQuery>,
) -> Result<Markup, UiError> {
    if query.offset < 0 {
        return Err(UiError::BadRequest("`offset` must be 0 or more".into()));
    }
    let paused = match query.show.as_str() {
        "" | "all" => None,
        "active" => Some(false),
        "paused" => Some(true),
        other => return Err(UiError::BadRequest(format!("`show` must be all, active or paused, not `{other}`"))),
    };
    let filter = DagFilter {
        only_active: true,
        paused,
        tags: if query.tag.is_empty() { Vec::new() } else { vec![query.tag.clone()] },
        dag_id_matches: TextMatch::contains(&query.q).into_iter().collect(),
        ..DagFilter::default()
    };
    let db = state.db().await?;
    let (dags, total) = db::dags::list_filtered(&db, &filter, DEFAULT_ORDER, PAGE_SIZE, query.offset).await?;
    let ids: Vec<String> = dags.iter().map(|d| d.dag_id.clone()).collect();
    let versions: Vec<i64> = dags.iter().map(|d| d.latest_version_id).collect();
    let (recent, last_logical, definitions, tags) = tokio::try_join!(
        overview::recent_runs(&db, &ids, RECENT_RUNS),
        overview::last_scheduled_logical_dates(&db, &ids),
        overview::definitions(&db, &versions),
        overview::all_tags(&db),
    )?;
    let mut runs_by_dag: HashMap<&str, Vec<&RecentRun>> = HashMap::new();
    for run in &recent {
        runs_by_dag.entry(run.dag_id.as_str()).or_default().push(run);
    }
    let now = Utc::now();
    let may_pause = session.may(Method::PATCH, "/api/v2/dags/{dag_id}");
    let content = html! {
        h1 { "DAGs" }
        form.filters method="get" action="/dags" role="search" {
            input type="search" name="q" value=(query.q) placeholder="Search DAG ids" aria-label="Search DAG ids";
            select name="tag" aria-label="Tag" {
                option value="" { "All tags" }
                @for tag in &tags { option value=(tag) selected[*tag == query.tag] { (tag) } }
            }
            select name="show" aria-label="Show" {
                option value="all" selected[paused.is_none()] { "All" }
                option value="active" selected[paused == Some(false)] { "Active" }
                option value="paused" selected[paused == Some(true)] { "Paused" }
            }
            button.secondary type="submit" { "Filter" }
        }
        @if dags.is_empty() {
            p.notice { "No DAG matches. DAG files go in the scheduler's DAG folder (GUST__DAGS__FOLDER); broken ones are listed under "
                a href="/import-errors" { "Import errors" } "." }
        } @else {
            table.dags {
                thead { tr {
                    th scope="col" { "State" } th scope="col" { "DAG" } th scope="col" { "Owner" }
                    th scope="col" { "Schedule" } th scope="col" { "Next run" } th scope="col" { "Recent runs" }
                } }
                tbody {
                    @for dag in &dags {
                        @let dag_href = path(&["dags", &dag.dag_id]);
                        tr {
                            td {
                                @if may_pause {
                                    form.inline method="post" action=(format!("{dag_href}/pause")) {
                                        (layout::csrf_field(&session))
                                        input type="hidden" name="is_paused" value=(if dag.is_paused { "false" } else { "true" });
                                        input type="hidden" name="back" value=(query.link(query.offset));
                                        span.state-word class=(if dag.is_paused { "muted" } else { "ok" }) {
                                            @if dag.is_paused { "paused" } @else { "active" }
                                        }
                                        " "
                                        button.toggle.secondary type="submit"
                                            aria-label=(format!("{} {}", if dag.is_paused { "Unpause" } else { "Pause" }, dag.dag_id)) {
                                            @if dag.is_paused { "Unpause" } @else { "Pause" }
                                        }
                                    }
                                } @else {
                                    @if dag.is_paused { span.muted { "paused" } } @else { span.ok { "active" } }
                                }
                            }
                            td {
                                a.dag-link href=(dag_href) { (dag.dag_id) }
                                @if let Some(description) = &dag.description { div.muted { (description) } }
                                div { @for tag in &dag.tags { a.tag href=(format!("/dags?tag={}", query_value(tag))) { (tag) } } }
                            }
                            td { (dag.owners.join(", ")) }
                            td {
                                @match &dag.schedule {
                                    Some(schedule) => { code { (schedule) } }
                                    None => { span.muted { "manual only" } }
                                }
                            }
                            td {
                                @let next = definitions.get(&dag.latest_version_id).and_then(|definition| {
                                    let schedule = definition.schedule.as_ref()?;
                                    schedule.next_run(&definition.schedule_bounds(), now, last_logical.get(&dag.dag_id).copied(), definition.catchup)
                                });
                                @match next {
                                    Some(interval) if interval.end <= now => { "due now" }
                                    Some(interval) => { (layout::time(Some(interval.end))) }
                                    None => { span.muted { "–" } }
                                }
                            }
                            td {
                                span.bars {
                                    @for run in runs_by_dag.get(dag.dag_id.as_str()).map(Vec::as_slice).unwrap_or_default() {
                                        a class=(layout::state_class(Some(&run.state)))
                                            href=(path(&["dags", &dag.dag_id, "runs", &run.run_id]))
                                            title=(format!("{}: {}", run.run_id, run.state)) {
                                            span.sr-only { (run.run_id) ": " (run.state) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        (layout::pager(total, PAGE_SIZE, query.offset, |offset| query.link(offset)))
    };
    Ok(layout::page(&session, "DAGs", Nav::Dags, content))
}

/// The pause toggle's fields.
#[derive(Deserialize)]
pub(crate) struct PauseForm {
    /// `true` to pause, `false` to unpause.
    is_paused: bool,
    /// The list page to return to.
    back: Option<String>,
}

/// `POST /dags/{dag_id}/pause`: pauses or unpauses through `PATCH /api/v2/dags/{dag_id}`.
pub(crate) async fn set_paused(
    Extension(api): Extension<Api>,
    Path(dag_id): Path<String>,
    UiForm { session, form }: UiForm<PauseForm>,
) -> Result<Response, UiError> {
    let body = json!({ "is_paused": form.is_paused });
    api.call(&session, Method::PATCH, &path(&["api", "v2", "dags", &dag_id]), Some(&body)).await?;
    let back = form.back.filter(|b| b.starts_with("/dags") && !b.starts_with("//")).unwrap_or_else(|| "/dags".into());
    Ok(Redirect::to(&back).into_response())
}
