//! The admin pages: pools, variables (secret values masked as the API masks
//! them), import errors, dead letters and users. Reads come from the
//! database, except variables, which are read through the API so their
//! values are masked by the API's own rule; every write goes through
//! [`Api::call`](crate::ui::api_call::Api::call) and redirects back to its
//! list, or re-renders the list with the API's refusal and status.
//!
//! This module holds what the lists share: the page size, the list query,
//! a write's outcome and the small delete form. Each page lives in its own
//! module (`pools`, `variables`, `import_errors`, `dead_letters`, `users`)
//! and its handlers are re-exported here for the routes.

mod dead_letters;
mod import_errors;
mod pools;
mod users;
mod variables;

pub(crate) use dead_letters::dead_letters;
pub(crate) use import_errors::import_errors;
pub(crate) use pools::{delete_pool, pools, save_pool};
pub(crate) use users::{delete_user, save_user, users};
pub(crate) use variables::{delete_variable, save_variable, variables};

use axum::{
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use maud::{html, Markup};
use serde::Deserialize;

use crate::ui::{api_call::ApiReply, error::UiError, layout, pages::run::refusal, session::Session};

/// Rows per page of every admin list.
const PAGE_SIZE: i64 = 50;

/// The query of an admin list: the page, an item to edit, a search.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    offset: Option<i64>,
    #[serde(default)]
    edit: Option<String>,
    #[serde(default)]
    q: Option<String>,
}

impl ListQuery {
    fn offset(&self) -> Result<i64, UiError> {
        match self.offset {
            Some(offset) if offset < 0 => Err(UiError::BadRequest(format!("`offset` must be 0 or more, got {offset}"))),
            offset => Ok(offset.unwrap_or(0)),
        }
    }

    fn search(&self) -> &str {
        self.q.as_deref().map(str::trim).unwrap_or("")
    }
}

/// A refusal to show above a list: the API's status and detail.
type Refusal = (StatusCode, String);

/// A write's result: the 303 to `list` when the API did it, its refusal when it refused; other failures stay errors.
fn outcome(result: Result<ApiReply, UiError>, list: &str) -> Result<Result<Response, Refusal>, UiError> {
    match result {
        Ok(_) => Ok(Ok(Redirect::to(list).into_response())),
        Err(error) => Ok(Err(refusal(error)?)),
    }
}

/// A page answered with `status`: 200 normally, the refusal's status after a refused write.
fn with_status(refused: Option<&Refusal>, page: Markup) -> Response {
    (refused.map_or(StatusCode::OK, |(status, _)| *status), page).into_response()
}

/// "Yes" or "No".
fn yes_no(value: bool) -> &'static str {
    if value {
        "Yes"
    } else {
        "No"
    }
}

/// The small form that deletes one item.
fn delete_form(session: &Session, action: &str, what: &str) -> Markup {
    html! {
        form.inline.delete method="post" action=(action) {
            (layout::csrf_field(session))
            button.danger type="submit" aria-label={ "Delete " (what) } { "Delete" }
        }
    }
}
