//! The route table and the answers for unknown paths and methods.

mod backfills;
mod clear;
mod dag_runs;
mod dags;
mod dead_letters;
mod health;
mod import_errors;
mod logs;
mod mark;
mod pagination;
mod pools;
mod task_graph;
mod task_instances;
mod tries;
mod xcom;

use axum::{
    http::{Method, StatusCode, Uri},
    routing::{get, patch, post, put},
    Router,
};

use crate::{error::ApiError, AppState};

pub(crate) use health::BrokerHealth;

/// Every `/api/v2` route gust serves, and the token endpoint.
pub(crate) fn api() -> Router<AppState> {
    const RUN: &str = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}";
    const TI: &str = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}";
    Router::new()
        .route("/auth/token", post(crate::auth::login))
        .route("/api/v2/monitor/health", get(health::health))
        .route("/api/v2/version", get(health::version))
        .route("/api/v2/dags", get(dags::list))
        .route("/api/v2/dags/{dag_id}", get(dags::get_one).patch(dags::patch))
        .route("/api/v2/dags/{dag_id}/dagRuns", get(dag_runs::list).post(dag_runs::trigger))
        .route(RUN, get(dag_runs::get_one))
        .route(&format!("{RUN}/taskInstances"), get(task_instances::list))
        .route(TI, get(task_instances::get_one).patch(mark::patch))
        .route(&format!("{TI}/dry_run"), patch(mark::dry_run))
        .route(&format!("{TI}/tries"), get(tries::list))
        .route(&format!("{TI}/tries/{{try_number}}"), get(tries::get_one))
        .route(&format!("{TI}/logs/{{try_number}}"), get(logs::get))
        .route(&format!("{TI}/xcomEntries"), get(xcom::list))
        .route(&format!("{TI}/xcomEntries/{{xcom_key}}"), get(xcom::get_one))
        .route("/api/v2/dags/{dag_id}/clearTaskInstances", post(clear::clear))
        .route("/api/v2/backfills", get(backfills::list).post(backfills::create))
        .route("/api/v2/backfills/dry_run", post(backfills::dry_run))
        .route("/api/v2/backfills/{backfill_id}", get(backfills::get_one))
        .route("/api/v2/backfills/{backfill_id}/pause", put(backfills::pause))
        .route("/api/v2/backfills/{backfill_id}/unpause", put(backfills::unpause))
        .route("/api/v2/backfills/{backfill_id}/cancel", put(backfills::cancel))
        .route("/api/v2/importErrors", get(import_errors::list))
        .route("/api/v2/pools", get(pools::list).post(pools::create))
        .route("/api/v2/pools/{pool_name}", get(pools::get_one).patch(pools::patch).delete(pools::delete))
        .route("/api/v2/gust/deadLetters", get(dead_letters::list))
}

/// 404 for paths no route matches.
pub(crate) async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {method} {}; the API lives under /api/v2", uri.path()))
}

/// 405 for known paths asked with a method they do not support.
pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::with_status(StatusCode::METHOD_NOT_ALLOWED, format!("{} does not support {method}", uri.path()))
}
