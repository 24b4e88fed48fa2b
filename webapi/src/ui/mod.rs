//! The web UI: server-rendered HTML pages (maud) with small progressive
//! enhancement (htmx, vendored), served by gust-webapi on the API's address.
//!
//! # Layout
//!
//! - [`session`]: who is asking. The session is the API's JWT in an
//!   `HttpOnly; SameSite=Strict` cookie, or a bearer header; login, logout,
//!   and the CSRF check every state-changing form passes ([`session::UiForm`]).
//! - [`api_call`]: every write goes through the API's own router in process,
//!   with the caller's token, so validation and roles are the API's exactly.
//! - [`layout`]: the page shell, navigation, state colours, time formats.
//! - [`error`]: the one place UI failures become HTML responses.
//! - [`assets`]: the embedded static files (CSS, htmx and its licence).
//! - [`graph_layout`]: the layered layout of a DAG graph, pure and unit tested.
//! - [`pages`]: one module per page or page family.
//!
//! # Invariants
//!
//! - Every user-controlled value reaches the page through maud's escaping;
//!   nothing is spliced in with `PreEscaped` except markup this module builds.
//! - Pages carry a strict Content-Security-Policy: scripts and styles only
//!   from `/static`, no inline script, no inline style attributes (colours
//!   are classes), no framing.
//! - Polling exists only while something runs: a fragment that sees nothing
//!   live renders without its `hx-trigger`, so the browser stops asking.
//! - A finished try's log never changes, so its fragments are served as
//!   immutable and the browser never fetches them twice.

pub(crate) mod api_call;
pub(crate) mod assets;
pub(crate) mod error;
pub(crate) mod graph_layout;
pub(crate) mod layout;
pub(crate) mod pages;
pub(crate) mod session;

use axum::{
    extract::Request,
    http::{header, HeaderValue},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    Extension, Router,
};

use crate::AppState;

/// The Content-Security-Policy of every UI response.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// The UI's routes. `api` is the API router (with its authorization layer)
/// that writes are sent through.
pub(crate) fn router(api: Router) -> Router<AppState> {
    use pages::{admin, dag, dags, home, run, task, trigger};
    Router::new()
        .route("/", get(home::page))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/static/{name}", get(assets::serve))
        .route("/dags", get(dags::page))
        .route("/dags/{dag_id}/pause", post(dags::set_paused))
        .route("/dags/{dag_id}", get(dag::grid))
        .route("/dags/{dag_id}/graph", get(dag::graph))
        .route("/dags/{dag_id}/gantt", get(dag::gantt))
        .route("/dags/{dag_id}/runs", get(dag::runs))
        .route("/dags/{dag_id}/code", get(dag::code))
        .route("/dags/{dag_id}/params", get(dag::params))
        .route("/dags/{dag_id}/trigger", get(trigger::trigger_form).post(trigger::trigger))
        .route("/dags/{dag_id}/backfill", get(trigger::backfill_form).post(trigger::backfill))
        .route("/dags/{dag_id}/runs/{run_id}", get(run::page))
        .route("/dags/{dag_id}/runs/{run_id}/clear", get(run::clear_preview).post(run::clear))
        .route("/dags/{dag_id}/runs/{run_id}/mark", post(run::mark))
        .route("/dags/{dag_id}/runs/{run_id}/live", get(run::live))
        .route("/dags/{dag_id}/runs/{run_id}/delete", post(run::delete))
        .route("/dags/{dag_id}/runs/{run_id}/tasks/{task_id}", get(task::page))
        .route("/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/mapped/{map_index}", get(task::mapped_redirect))
        .route("/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/log", get(task::log_fragment))
        .route("/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/log.txt", get(task::log_download))
        .route("/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/clear", get(task::clear_preview).post(task::clear))
        .route("/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/mark", post(task::mark))
        .route("/pools", get(admin::pools).post(admin::save_pool))
        .route("/pools/{name}/delete", post(admin::delete_pool))
        .route("/variables", get(admin::variables).post(admin::save_variable))
        .route("/variables/{key}/delete", post(admin::delete_variable))
        .route("/import-errors", get(admin::import_errors))
        .route("/dead-letters", get(admin::dead_letters))
        .route("/users", get(admin::users).post(admin::save_user))
        .route("/users/{username}/delete", post(admin::delete_user))
        .layer(Extension(api_call::Api::new(api)))
        .layer(middleware::from_fn(refuse_nul))
        .layer(middleware::from_fn(security_headers))
}

/// A 400 page for an address whose path or query holds an encoded NUL (`%00`): PostgreSQL
/// cannot compare text with one, so it would otherwise fail the page's query (a 500).
async fn refuse_nul(request: Request, next: Next) -> Response {
    let raw = request.uri().path_and_query().map(|p| p.as_str().to_ascii_lowercase()).unwrap_or_default();
    if raw.contains("%00") {
        let detail = "the address contains a NUL character (%00), which no name in gust can hold; remove it";
        return error::UiError::BadRequest(detail.into()).into_response();
    }
    next.run(request).await
}

/// The UI's 404 page for a path no route matches, with the UI's security headers.
pub(crate) fn not_found_page(path: &str) -> Response {
    let mut response = error::UiError::NotFound(format!("there is no page at {path}")).into_response();
    add_security_headers(&mut response);
    response
}

/// Adds the UI's security headers, and `Cache-Control: no-store` unless the handler chose caching.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    add_security_headers(&mut response);
    response
}

fn add_security_headers(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
}
