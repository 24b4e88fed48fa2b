//! The one place UI failures become responses: an HTML page with the status
//! and a sentence saying what to do, or a redirect to the login page.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use gust_shared::db::DbError;
use maud::html;

use super::{api_call::query_value, layout};
use crate::ApiError;

/// Why a UI request failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UiError {
    /// No valid session: the browser goes to the login page and comes back to `next`.
    #[error("sign in first")]
    LoginRequired {
        /// The page to return to.
        next: String,
        /// True for an htmx request, which gets `HX-Redirect` instead of a 303.
        htmx: bool,
        /// Why the session is not valid, when it was there.
        why: Option<String>,
    },
    /// The request is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// The thing asked for does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// Not allowed, or a failed CSRF check (403).
    #[error("{0}")]
    Forbidden(String),
    /// The API refused or failed; its status and detail are kept.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Something that should not happen (500); the detail is logged, not shown.
    #[error("{0}")]
    Internal(String),
}

impl From<DbError> for UiError {
    fn from(error: DbError) -> Self {
        UiError::Api(ApiError::Db(error))
    }
}

impl From<deadpool_postgres::PoolError> for UiError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        UiError::Api(ApiError::Db(DbError::Pool(error)))
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let (status, detail) = match self {
            UiError::LoginRequired { next, htmx, why } => {
                let mut location = format!("/login?next={}", query_value(&next));
                if let Some(why) = why {
                    tracing::info!(%why, "UI session refused");
                    location.push_str("&expired=1");
                }
                if htmx {
                    let mut response = StatusCode::UNAUTHORIZED.into_response();
                    if let Ok(value) = HeaderValue::from_str(&location) {
                        response.headers_mut().insert("hx-redirect", value);
                    }
                    return response;
                }
                return Redirect::to(&location).into_response();
            }
            UiError::BadRequest(detail) => (StatusCode::BAD_REQUEST, detail),
            UiError::NotFound(detail) => (StatusCode::NOT_FOUND, detail),
            UiError::Forbidden(detail) => (StatusCode::FORBIDDEN, detail),
            UiError::Api(error) => error.status_and_detail(),
            UiError::Internal(detail) => {
                tracing::error!(%detail, "UI request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal server error; the gust-webapi log has the details".into())
            }
        };
        let title = status.canonical_reason().unwrap_or("Error");
        let page = layout::bare_page(
            title,
            html! {
                main.problem {
                    h1 { (status.as_u16()) " " (title) }
                    p role="alert" { (detail) }
                    p { a href="/" { "Home" } " · " a href="/dags" { "DAGs" } }
                }
            },
        );
        let mut response = (status, page).into_response();
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}
