//! The Code tab, `/dags/{dag_id}/code`: the YAML a DAG version was parsed
//! from, and the list of every stored version.

use axum::extract::{Path, RawQuery, State};
use gust_shared::db;
use maud::{html, Markup};
use serde::Deserialize;

use super::{dag_and_latest, dag_header, number_param, query, run_or_404, Tab};
use crate::{
    ui::{
        api_call::path,
        error::UiError,
        layout::{self, Nav},
        session::Session,
    },
    AppState,
};

/// The code tab's query string.
#[derive(Deserialize, Default)]
pub(crate) struct CodeQuery {
    version: Option<String>,
    run_id: Option<String>,
}

/// `GET /dags/{dag_id}/code`: the YAML a version was parsed from (`?version=N`,
/// or the version run `?run_id=` used; the latest by default), and every version.
pub(crate) async fn code(
    State(state): State<AppState>,
    session: Session,
    Path(dag_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Markup, UiError> {
    let q: CodeQuery = query(raw)?;
    let db = state.db().await?;
    let (dag, latest) = dag_and_latest(&db, &dag_id).await?;
    let versions = db::dags::versions(&db, &dag_id).await?;
    let run = match q.run_id.as_deref().filter(|r| !r.is_empty()) {
        Some(run_id) => Some(run_or_404(&db, &dag_id, run_id).await?),
        None => None,
    };
    let wanted = number_param("version", q.version.as_deref(), -1, 1, i64::from(i32::MAX))?;
    let chosen_id = if wanted > 0 {
        versions.iter().find(|v| i64::from(v.version_number) == wanted).map(|v| v.id).ok_or_else(|| {
            UiError::NotFound(format!("DAG `{dag_id}` has no version {wanted}; the list below has them all"))
        })?
    } else if let Some(run) = &run {
        run.dag_version_id
    } else {
        latest.id
    };
    let version = if chosen_id == latest.id {
        latest.clone()
    } else {
        db::dags::version(&db, chosen_id)
            .await?
            .ok_or_else(|| UiError::NotFound(format!("DAG `{dag_id}` has no version with id {chosen_id}")))?
    };
    let source = db::dags::source(&db, version.id).await?.flatten();
    let base = path(&["dags", &dag_id]);
    let content = html! {
        (dag_header(&session, &dag, latest.version_number, Some(Tab::Code), run.as_ref().map(|r| r.run_id.as_str())))
        h2 {
            "Version v" (version.version_number)
            @if version.id == latest.id { " (latest)" }
            @if let Some(run) = &run { @if run.dag_version_id == version.id { " · used by run " (run.run_id) } }
        }
        p.muted { "Stored " (layout::time(Some(version.created_at))) " from " code { (dag.fileloc) } }
        @match &source {
            Some(text) => {
                pre.source #source {
                    code { @for line in text.lines() { span.ln { (line) "\n" } } }
                }
            }
            None => {
                p.notice #no-source {
                    "Version v" (version.version_number) " was stored before gust kept DAG sources, so its YAML text is not available; "
                    "re-parse the file (restart a scheduler, or change the file) to store the source of the current version. "
                    "The definition gust parsed from it follows."
                }
                (layout::json_block(&serde_json::to_value(&version.definition).unwrap_or_default()))
            }
        }
        h2 { "Versions" }
        table.versions {
            thead { tr { th scope="col" { "Version" } th scope="col" { "Stored" } th scope="col" { "Source" } } }
            tbody {
                @for v in &versions {
                    tr {
                        td {
                            a href={(base) "/code?version=" (v.version_number)} aria-current=[(v.id == version.id).then_some("page")] {
                                "v" (v.version_number)
                            }
                            @if v.id == latest.id { " " span.muted { "latest" } }
                        }
                        td { (layout::time(Some(v.created_at))) }
                        td { @if v.has_source { "kept" } @else { span.muted { "not kept (stored before gust kept sources)" } } }
                    }
                }
            }
        }
    };
    Ok(layout::page(&session, &format!("{dag_id} · code"), Nav::Dags, content))
}
