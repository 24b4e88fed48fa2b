//! Who is asking: the session cookie (the API's JWT, `HttpOnly;
//! SameSite=Strict`) or a bearer header, login and logout, and the CSRF
//! check of every state-changing form.
//!
//! A write from a cookie session must pass two checks: its `Origin` (or,
//! when a browser sends none, `Sec-Fetch-Site`) is this server, and it
//! carries the session's CSRF token (a hash of the session token, which a
//! cross-site page can neither read nor compute), as the form field `csrf`
//! or the `X-CSRF-Token` header htmx sends. Bearer requests carry no ambient
//! credential, so they need neither.

use axum::{
    extract::{ConnectInfo, FromRequest, FromRequestParts, Query, Request},
    http::{header, request::Parts, HeaderMap, HeaderValue, Method, StatusCode},
    response::{IntoResponse, Redirect, Response},
    Extension,
};
use maud::{html, Markup};
use serde::{de::DeserializeOwned, Deserialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;

use super::{api_call::Api, error::UiError, layout};
use crate::{
    auth::{self, Access, CurrentUser},
    AppState,
};

/// Name of the cookie that holds the session token.
pub(crate) const SESSION_COOKIE: &str = "gust_session";

/// Name of the form field and (as `X-CSRF-Token`) header that carries the CSRF token.
pub(crate) const CSRF_FIELD: &str = "csrf";

/// The signed-in caller of a UI request.
pub(crate) struct Session {
    /// The user, as the users table has them now.
    pub(crate) user: CurrentUser,
    /// The JWT the request came with, sent along when the UI calls the API.
    pub(crate) token: String,
    /// True when the token came from the cookie (so writes need the CSRF checks).
    from_cookie: bool,
}

impl Session {
    /// The CSRF token of this session: forms put it in a hidden field, htmx in a header.
    pub(crate) fn csrf_token(&self) -> String {
        csrf_token_of(&self.token)
    }

    /// True when the user's role lets them do `method` on the API route template `api_route`,
    /// so a page shows the button for it.
    pub(crate) fn may(&self, method: Method, api_route: &str) -> bool {
        match auth::required_access(&method, api_route) {
            Access::Public => true,
            Access::Role(needed) => self.user.role >= needed,
        }
    }
}

fn csrf_token_of(session_token: &str) -> String {
    hex::encode(Sha256::new().chain_update(b"gust-ui-csrf\0").chain_update(session_token).finalize())
}

/// The session token of a request: the bearer header first, else the cookie.
fn token_of(headers: &HeaderMap) -> Option<(String, bool)> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(|t| (t.trim().to_string(), false));
    bearer.or_else(|| {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == SESSION_COOKIE)
            .map(|(_, value)| (value.to_string(), true))
    })
}

/// The path and query of the request, where the login page sends the user back to.
fn here(parts: &Parts) -> String {
    parts.uri.path_and_query().map_or_else(|| "/".to_string(), |pq| pq.as_str().to_string())
}

impl FromRequestParts<AppState> for Session {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let login = |why: Option<&str>| UiError::LoginRequired {
            next: here(parts),
            htmx: parts.headers.contains_key("hx-request"),
            why: why.map(str::to_string),
        };
        let Some((token, from_cookie)) = token_of(&parts.headers) else {
            return Err(login(None));
        };
        let claims = state.auth.verify(&token).map_err(|_| login(Some("your session has ended; sign in again")))?;
        let user = auth::current_user(state, claims).await.map_err(|error| match error {
            crate::ApiError::Unauthorized(why) => login(Some(&why)),
            other => UiError::Api(other),
        })?;
        Ok(Session { user, token, from_cookie })
    }
}

/// A state-changing form submission from a signed-in user that passed the CSRF checks, with its fields.
pub(crate) struct UiForm<T> {
    /// The caller.
    pub(crate) session: Session,
    /// The form's fields (without `csrf`).
    pub(crate) form: T,
}

#[derive(Deserialize)]
struct CsrfField {
    csrf: Option<String>,
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for UiForm<T> {
    type Rejection = UiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let session = Session::from_request_parts(&mut parts, state).await?;
        let bytes = axum::body::to_bytes(body, state.max_body_bytes)
            .await
            .map_err(|_| UiError::BadRequest(format!("the form is larger than {} bytes", state.max_body_bytes)))?;
        if session.from_cookie {
            check_same_origin(&parts.headers)?;
            let header_token = parts.headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).map(str::to_string);
            let field_token = serde_html_form::from_bytes::<CsrfField>(&bytes).ok().and_then(|f| f.csrf);
            let expected = session.csrf_token();
            if header_token.or(field_token).as_deref() != Some(expected.as_str()) {
                return Err(UiError::Forbidden(
                    "this form's security token is missing or belongs to another session; reload the page and try again"
                        .into(),
                ));
            }
        }
        let form = serde_html_form::from_bytes::<T>(&bytes)
            .map_err(|e| UiError::BadRequest(format!("the form is not what this page sends: {e}")))?;
        Ok(UiForm { session, form })
    }
}

/// Refuses a cookie-authenticated write whose `Origin` is another site (or,
/// without `Origin`, whose `Sec-Fetch-Site` is not `same-origin`).
fn check_same_origin(headers: &HeaderMap) -> Result<(), UiError> {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let cross_site = || {
        UiError::Forbidden("cross-site request refused: this form must be sent from a page of this gust server".into())
    };
    match headers.get(header::ORIGIN).map(|v| v.to_str().unwrap_or("")) {
        Some(origin) => {
            let origin_host = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
            if host.is_empty() || origin_host != Some(host) {
                return Err(cross_site());
            }
        }
        None => {
            let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
            if site.is_some_and(|s| s != "same-origin" && s != "none") {
                return Err(cross_site());
            }
        }
    }
    Ok(())
}

/// Where the login page sends the user afterwards: a path on this server, never another site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if is_safe_next(n) => n.to_string(),
        _ => "/".to_string(),
    }
}

/// True when `next` is a path on this server (`/dags/x?tab=grid`), as written
/// and once percent-decoded: never a URL with a host, nor what browsers read
/// as one (`//evil.example`, `/\evil.example`, a tab or newline inside).
pub(crate) fn is_safe_next(next: &str) -> bool {
    let decoded = percent_encoding::percent_decode_str(next).decode_utf8_lossy();
    let safe = [next, decoded.as_ref()].into_iter().all(|url| {
        url.starts_with('/') && !url.starts_with("//") && !url.contains('\\') && !url.chars().any(char::is_control)
    });
    safe
}

/// `response` with the session cookie cleared, which signs the browser out.
pub(crate) fn without_session(mut response: Response) -> Response {
    let cookie = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// The query of the login page.
#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
}

/// `GET /login`: the sign-in form.
pub(crate) async fn login_page(Query(query): Query<LoginQuery>) -> Markup {
    login_markup(&safe_next(query.next.as_deref()), None, "")
}

fn login_markup(next: &str, error: Option<&str>, username: &str) -> Markup {
    layout::bare_page(
        "Sign in",
        html! {
            main.login {
                h1 { "Sign in to gust" }
                @if let Some(error) = error { p.error role="alert" { (error) } }
                form method="post" action="/login" {
                    input type="hidden" name="next" value=(next);
                    label { "Username" input name="username" autocomplete="username" required value=(username); }
                    label { "Password" input name="password" type="password" autocomplete="current-password" required; }
                    button type="submit" { "Sign in" }
                }
            }
        },
    )
}

/// The sign-in form's fields.
#[derive(Deserialize)]
pub(crate) struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

/// `POST /login`: checks the password through `POST /auth/token` (its rate
/// limit included) and sets the session cookie.
pub(crate) async fn login(
    Extension(api): Extension<Api>,
    connect_info: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let body = json!({"username": form.username, "password": form.password});
    let reply = api.call_from(connect_info.map(|Extension(c)| c), None, Method::POST, "/auth/token", Some(&body)).await;
    match reply {
        Ok(reply) => {
            let Some(token) = reply.json["access_token"].as_str() else {
                return UiError::Internal("the token endpoint answered without a token".into()).into_response();
            };
            let max_age = reply.json["expires_in"].as_u64().unwrap_or(0);
            let mut response = Redirect::to(&next).into_response();
            let cookie = format!(
                "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
                if is_https(&headers) { "; Secure" } else { "" }
            );
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Err(UiError::Api(error)) => {
            let (status, detail) = error.status_and_detail();
            let status = if status.is_server_error() { status } else { StatusCode::UNAUTHORIZED.max(status) };
            (status, login_markup(&next, Some(&detail), &form.username)).into_response()
        }
        Err(other) => other.into_response(),
    }
}

/// True when the request reached us over HTTPS (directly or through a proxy that says so).
fn is_https(headers: &HeaderMap) -> bool {
    headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()) == Some("https")
        || headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).is_some_and(|o| o.starts_with("https://"))
}

/// `POST /logout`: clears the session cookie.
pub(crate) async fn logout(UiForm { session, .. }: UiForm<serde_json::Value>) -> Response {
    tracing::info!(username = %session.user.username, "signed out of the UI");
    without_session(Redirect::to("/login").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_page_stays_on_this_server() {
        assert_eq!(safe_next(Some("/dags/a?x=1")), "/dags/a?x=1");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("/%2F%2Fevil.example")), "/");
        assert_eq!(safe_next(Some("/\t/evil.example")), "/");
        assert_eq!(safe_next(Some("dags")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn cross_site_origin_is_refused_and_same_origin_passes() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("gust.internal:8080"));
        headers.insert(header::ORIGIN, HeaderValue::from_static("http://gust.internal:8080"));
        assert!(check_same_origin(&headers).is_ok());
        headers.insert(header::ORIGIN, HeaderValue::from_static("http://evil.example"));
        assert!(check_same_origin(&headers).is_err());
        headers.remove(header::ORIGIN);
        headers.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(check_same_origin(&headers).is_err());
        headers.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(check_same_origin(&headers).is_ok());
    }

    #[test]
    fn csrf_token_is_bound_to_the_session_token() {
        assert_eq!(csrf_token_of("a"), csrf_token_of("a"));
        assert_ne!(csrf_token_of("a"), csrf_token_of("b"));
    }
}
