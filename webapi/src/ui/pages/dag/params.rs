//! The Params tab, `/dags/{dag_id}/params`: the latest version's params with
//! their types, defaults and bounds.

use axum::extract::{Path, State};
use gust_shared::dag::Param;
use maud::{html, Markup};

use super::{dag_and_latest, dag_header, Tab};
use crate::{
    ui::{
        error::UiError,
        layout::{self, Nav},
        session::Session,
    },
    AppState,
};

/// `GET /dags/{dag_id}/params`: the latest version's params with their types, defaults and bounds.
pub(crate) async fn params(
    State(state): State<AppState>,
    session: Session,
    Path(dag_id): Path<String>,
) -> Result<Markup, UiError> {
    let db = state.db().await?;
    let (dag, latest) = dag_and_latest(&db, &dag_id).await?;
    let params = &latest.definition.params;
    let content = html! {
        (dag_header(&session, &dag, latest.version_number, Some(Tab::Params), None))
        @if params.is_empty() {
            p.notice { "This DAG declares no params." }
        } @else {
            table.params {
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "Type" } th scope="col" { "Default" }
                    th scope="col" { "Allowed values" } th scope="col" { "Minimum" } th scope="col" { "Maximum" }
                    th scope="col" { "Title" } th scope="col" { "Description" }
                } }
                tbody {
                    @for (name, param) in params.iter() {
                        (param_row(name, param))
                    }
                }
            }
        }
    };
    Ok(layout::page(&session, &format!("{dag_id} · params"), Nav::Dags, content))
}

fn param_row(name: &str, param: &Param) -> Markup {
    let types: Vec<&str> = param.types.iter().map(|t| t.name()).collect();
    html! {
        tr data-param=(name) {
            th scope="row" { code { (name) } }
            td.type { @if types.is_empty() { span.muted { "any" } } @else { (types.join(" or ")) } }
            td.default {
                @match param.effective_default() {
                    Some(value) => code { (value.to_string()) },
                    None => span.badge.s-failed { "required" },
                }
            }
            td.enum {
                @if let Some(allowed) = &param.allowed {
                    @for (i, value) in allowed.iter().enumerate() { @if i > 0 { ", " } code { (value.to_string()) } }
                }
            }
            td.minimum { @if let Some(min) = &param.minimum { (min.to_string()) } }
            td.maximum { @if let Some(max) = &param.maximum { (max.to_string()) } }
            td.title { @if let Some(title) = &param.title { (title) } }
            td.description { @if let Some(description) = &param.description { (description) } }
        }
    }
}
