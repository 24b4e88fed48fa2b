//! The import errors page, `/import-errors`: DAG files that failed to parse,
//! newest first.

use axum::extract::{RawQuery, State};
use gust_shared::db;
use maud::{html, Markup};

use super::{ListQuery, PAGE_SIZE};
use crate::{
    ui::{
        error::UiError,
        layout::{self, Nav},
        pages::run::query,
        session::Session,
    },
    AppState,
};

/// `GET /import-errors`: DAG files that failed to parse, with the whole problem text, newest first.
pub(crate) async fn import_errors(
    State(state): State<AppState>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> Result<Markup, UiError> {
    let offset = query::<ListQuery>(raw.as_deref())?.offset()?;
    let db = state.db().await?;
    let (errors, total) = db::import_errors::list(&db, PAGE_SIZE, offset, "timestamp DESC, id DESC").await?;
    drop(db);
    let content = html! {
        h1 { "Import errors" }
        @if total == 0 { p.ok { "Every DAG file parses." } }
        @for error in &errors {
            section.import-error data-id=(error.id) {
                h2.filename { (error.filename) }
                p.muted { "Last seen " (layout::time(Some(error.timestamp))) }
                pre.problem { (error.stacktrace) }
            }
        }
        (layout::pager(total, PAGE_SIZE, offset, |offset| format!("/import-errors?offset={offset}")))
    };
    Ok(layout::page(&session, "Import errors", Nav::ImportErrors, content))
}
