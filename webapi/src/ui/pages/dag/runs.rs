//! The Runs tab, `/dags/{dag_id}/runs`: the DAG's runs, newest first, filtered
//! by state and type, a page at a time.

use axum::extract::{Path, RawQuery, State};
use gust_shared::{
    db::{self, runs::RunFilter},
    state::ALL_RUN_STATES,
};
use maud::{html, Markup};
use serde::Deserialize;

use super::{dag_and_latest, dag_header, number_param, query, Tab, MAX_RUNS};
use crate::{
    ui::{
        api_call::{path, query_value},
        error::UiError,
        layout::{self, Nav},
        session::Session,
    },
    AppState,
};

/// Runs a page of the run list shows unless `?limit=` says otherwise.
const RUNS_PAGE: i64 = 25;
/// The run types `?run_type=` accepts.
const RUN_TYPES: [&str; 3] = ["manual", "scheduled", "backfill"];

/// The run list's query string.
#[derive(Deserialize, Default)]
pub(crate) struct RunsQuery {
    state: Option<String>,
    run_type: Option<String>,
    offset: Option<String>,
    limit: Option<String>,
}

/// `GET /dags/{dag_id}/runs`: the DAG's runs, newest first, filtered by state and type.
pub(crate) async fn runs(
    State(state): State<AppState>,
    session: Session,
    Path(dag_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Markup, UiError> {
    let q: RunsQuery = query(raw)?;
    let offset = number_param("offset", q.offset.as_deref(), 0, 0, i64::MAX / 2)?;
    let limit = number_param("limit", q.limit.as_deref(), RUNS_PAGE, 1, MAX_RUNS)?;
    let run_state = q.state.as_deref().unwrap_or("");
    if !run_state.is_empty() && !ALL_RUN_STATES.iter().any(|s| s.as_str() == run_state) {
        return Err(UiError::BadRequest(format!(
            "`state` must be one of queued, running, success, failed, not `{run_state}`"
        )));
    }
    let run_type = q.run_type.as_deref().unwrap_or("");
    if !run_type.is_empty() && !RUN_TYPES.contains(&run_type) {
        return Err(UiError::BadRequest(format!(
            "`run_type` must be one of manual, scheduled, backfill, not `{run_type}`"
        )));
    }
    let db = state.db().await?;
    let (dag, latest) = dag_and_latest(&db, &dag_id).await?;
    let filter = RunFilter {
        dag_id: Some(dag_id.clone()),
        states: if run_state.is_empty() { Vec::new() } else { vec![run_state.to_string()] },
        run_types: if run_type.is_empty() { Vec::new() } else { vec![run_type.to_string()] },
        ..RunFilter::default()
    };
    let (rows, total) = db::runs::list_filtered(&db, &filter, "run_after DESC, id DESC", limit, offset).await?;
    let base = path(&["dags", &dag_id]);
    let link = |offset: i64| {
        format!(
            "{base}/runs?state={}&run_type={}&limit={limit}&offset={offset}",
            query_value(run_state),
            query_value(run_type)
        )
    };
    let content = html! {
        (dag_header(&session, &dag, latest.version_number, Some(Tab::Runs), None))
        form.inline-filters method="get" action={(base) "/runs"} {
            label { "State "
                select name="state" {
                    option value="" { "any" }
                    @for s in ALL_RUN_STATES { option value=(s.as_str()) selected[s.as_str() == run_state] { (s.as_str()) } }
                }
            }
            " "
            label { "Type "
                select name="run_type" {
                    option value="" { "any" }
                    @for t in RUN_TYPES { option value=(t) selected[t == run_type] { (t) } }
                }
            }
            input type="hidden" name="limit" value=(limit);
            " " button.secondary type="submit" { "Filter" }
        }
        @if rows.is_empty() {
            p.notice { "No run matches." }
        } @else {
            table.runs {
                thead { tr {
                    th scope="col" { "Run" } th scope="col" { "State" } th scope="col" { "Type" }
                    th scope="col" { "Logical date" } th scope="col" { "Run after" } th scope="col" { "Started" }
                    th scope="col" { "Ended" } th scope="col" { "Duration" } th scope="col" { "Note" }
                } }
                tbody {
                    @for run in &rows {
                        tr {
                            td { a.run-link href=(path(&["dags", &dag_id, "runs", &run.run_id])) { (run.run_id) } }
                            td { (layout::state_badge(Some(run.state.as_str()))) }
                            td { (run.run_type) }
                            td { (layout::time(run.logical_date)) }
                            td { (layout::time(Some(run.run_after))) }
                            td { (layout::time(run.start_date)) }
                            td { (layout::time(run.end_date)) }
                            td { (layout::duration(layout::seconds_between(run.start_date, run.end_date))) }
                            td { @if let Some(note) = &run.note { (note) } }
                        }
                    }
                }
            }
        }
        (layout::pager(total, limit, offset, link))
    };
    Ok(layout::page(&session, &format!("{dag_id} · runs"), Nav::Dags, content))
}
