//! The route table and the answers for unknown paths and methods.

mod backfills;
mod clear;
mod connections;
mod dag_files;
mod dag_runs;
mod dags;
mod dead_letters;
mod event_logs;
mod health;
mod import_errors;
mod list_query;
mod logs;
mod mark;
mod pagination;
mod path_params;
mod pools;
mod run_changes;
mod task_graph;
mod task_instances;
mod tries;
mod users;
mod variables;
mod xcom;

use axum::{
    http::{header, HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use utoipa::OpenApi as _;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{error::ApiError, openapi::ApiDoc, AppState};

pub(crate) use health::BrokerHealth;

/// Every `/api/v2` route gust serves, and the token endpoint, with the OpenAPI
/// document of those registered through `routes!`.
pub(crate) fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(crate::auth::login))
        .routes(routes!(health::health))
        .routes(routes!(health::version))
        .routes(routes!(dags::list))
        .routes(routes!(dags::get_one, dags::patch, dags::delete))
        .routes(routes!(dag_runs::list, dag_runs::trigger))
        .routes(routes!(dag_runs::get_one, run_changes::patch, run_changes::delete))
        .routes(routes!(run_changes::clear))
        .routes(routes!(task_instances::list))
        .routes(routes!(task_instances::get_one))
        .routes(routes!(mark::patch))
        .routes(routes!(mark::dry_run))
        .routes(routes!(tries::list))
        .routes(routes!(tries::get_one))
        .routes(routes!(logs::get))
        .routes(routes!(xcom::list))
        .routes(routes!(xcom::get_one))
        .routes(routes!(clear::clear))
        .routes(routes!(backfills::list, backfills::create))
        .routes(routes!(backfills::dry_run))
        .routes(routes!(backfills::get_one))
        .routes(routes!(backfills::pause))
        .routes(routes!(backfills::unpause))
        .routes(routes!(backfills::cancel))
        .routes(routes!(import_errors::list))
        .routes(routes!(pools::list, pools::create))
        .routes(routes!(pools::get_one, pools::patch, pools::delete))
        .routes(routes!(dead_letters::list))
        .routes(routes!(dag_files::list))
        .routes(routes!(dag_files::get_one, dag_files::put, dag_files::delete))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::get_one, users::patch, users::delete))
        .routes(routes!(variables::list, variables::create))
        .routes(routes!(variables::get_one, variables::patch, variables::delete))
        .routes(routes!(connections::list, connections::create))
        .routes(routes!(connections::get_one, connections::patch, connections::delete))
        .routes(routes!(event_logs::list))
        .routes(routes!(event_logs::get_one))
}

/// 404 for paths no route matches: an HTML page for a browser outside `/api`, else the API's JSON error.
pub(crate) async fn not_found(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let wants_html = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/html"));
    if wants_html && !uri.path().starts_with("/api/") {
        return crate::ui::not_found_page(uri.path());
    }
    ApiError::NotFound(format!("no route for {method} {}; the API lives under /api/v2", uri.path())).into_response()
}

/// 405 for known paths asked with a method they do not support.
pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::with_status(StatusCode::METHOD_NOT_ALLOWED, format!("{} does not support {method}", uri.path()))
}
