//! `GET /api/v2/auth/login` and `GET /api/v2/auth/logout`: Airflow's redirects
//! to the auth manager's sign-in and sign-out, which in gust are the web UI's
//! sign-in page and clearing its session cookie.

use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::{error::ApiError, extract::ApiQuery, ui::session};

/// The web UI's sign-in page.
const LOGIN_PAGE: &str = "/login";

/// The query of `GET /api/v2/auth/login`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct LoginRedirect {
    /// Where to return after signing in: a path on this server, such as `/dags/etl`.
    next: Option<String>,
}

/// `GET /api/v2/auth/login`: a redirect to the web UI's sign-in page, which
/// returns to `next` afterwards; a `next` off this server is a 400.
#[utoipa::path(get, path = "/api/v2/auth/login", tag = "Login", operation_id = "login", params(LoginRedirect), responses(
    (status = 307, description = "To the sign-in page"),
    (status = 400, description = "`next` is not a path on this server"),
))]
pub(crate) async fn login(ApiQuery(query): ApiQuery<LoginRedirect>) -> Result<Response, ApiError> {
    let Some(next) = query.next.filter(|next| !next.is_empty()) else {
        return Ok(Redirect::temporary(LOGIN_PAGE).into_response());
    };
    if !session::is_safe_next(&next) {
        return Err(ApiError::BadRequest(format!(
            "Invalid or unsafe next URL `{next}`: give a path on this server, such as /dags"
        )));
    }
    let query = serde_html_form::to_string([("next", next.as_str())])
        .map_err(|e| ApiError::BadRequest(format!("`next` cannot be passed on: {e}")))?;
    Ok(Redirect::temporary(&format!("{LOGIN_PAGE}?{query}")).into_response())
}

/// `GET /api/v2/auth/logout`: clears the web UI's session cookie and redirects
/// to the sign-in page. gust tokens are not revocable: a bearer token stays
/// valid until it expires or its user's password or role changes.
#[utoipa::path(get, path = "/api/v2/auth/logout", tag = "Login", operation_id = "logout", responses(
    (status = 307, description = "To the sign-in page, with the session cookie cleared"),
))]
pub(crate) async fn logout() -> Response {
    session::without_session(Redirect::temporary(LOGIN_PAGE).into_response())
}
