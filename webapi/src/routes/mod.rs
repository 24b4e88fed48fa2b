//! The route table and the answers for unknown paths and methods.

mod asset_events;
mod assets;
mod backfills;
mod bulk;
mod bulk_runs;
mod clear;
mod config;
mod connection_tests;
mod connections;
mod dag_details;
mod dag_files;
mod dag_parsing;
mod dag_runs;
mod dag_sources;
mod dag_stats;
mod dag_tags;
mod dag_versions;
mod dag_warnings;
mod dags;
mod dead_letters;
mod event_logs;
mod favorites;
mod health;
mod import_errors;
mod input_checks;
mod jobs;
mod list_query;
mod login;
mod logs;
mod mark;
mod pagination;
mod path_params;
mod plugins;
mod pools;
mod providers;
mod queued_asset_events;
mod run_batch;
mod run_changes;
mod run_clears;
mod run_wait;
mod task_graph;
mod task_instances;
mod tasks;
mod ti_batch;
mod ti_bulk;
mod ti_dependencies;
mod ti_links;
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
        .routes(routes!(crate::auth::login_cli))
        .routes(routes!(login::login))
        .routes(routes!(login::logout))
        .routes(routes!(health::health))
        .routes(routes!(health::version))
        .routes(routes!(dags::list, dags::patch_many))
        .routes(routes!(dags::get_one, dags::patch, dags::delete))
        .routes(routes!(dag_details::get_dag_details))
        .routes(routes!(dag_tags::get_dag_tags))
        .routes(routes!(dag_stats::get_dag_stats))
        .routes(routes!(dag_sources::get_dag_source))
        .routes(routes!(dag_versions::get_dag_versions))
        .routes(routes!(dag_versions::get_dag_version))
        .routes(routes!(dag_warnings::list_dag_warnings))
        .routes(routes!(favorites::favorite_dag))
        .routes(routes!(favorites::unfavorite_dag))
        .routes(routes!(tasks::get_tasks))
        .routes(routes!(tasks::get_task))
        .routes(routes!(dag_parsing::reparse_dag_file))
        .routes(routes!(dag_runs::list, dag_runs::trigger, bulk_runs::bulk_dag_runs))
        .routes(routes!(run_batch::get_list_dag_runs_batch))
        .routes(routes!(run_wait::wait_dag_run_until_finished))
        .routes(routes!(run_clears::clear_dag_runs))
        .routes(routes!(run_clears::clear_dag_run_partitions))
        .routes(routes!(dag_runs::get_one, run_changes::patch, run_changes::delete))
        .routes(routes!(run_changes::clear))
        .routes(routes!(task_instances::list, ti_bulk::bulk))
        .routes(routes!(ti_batch::list_batch))
        .routes(routes!(task_instances::get_one, mark::patch, task_instances::delete))
        .routes(routes!(task_instances::get_mapped, mark::patch_by_map_index))
        .routes(routes!(task_instances::list_mapped))
        .routes(routes!(mark::dry_run))
        .routes(routes!(mark::dry_run_by_map_index))
        .routes(routes!(mark::patch_group))
        .routes(routes!(mark::dry_run_group))
        .routes(routes!(ti_dependencies::get))
        .routes(routes!(ti_dependencies::get_mapped))
        .routes(routes!(ti_links::get_extra_links))
        .routes(routes!(ti_links::get_external_log_url))
        .routes(routes!(tries::list))
        .routes(routes!(tries::list_mapped))
        .routes(routes!(tries::get_one))
        .routes(routes!(tries::get_one_mapped))
        .routes(routes!(logs::get))
        .routes(routes!(xcom::list, xcom::create_xcom_entry))
        .routes(routes!(xcom::get_one, xcom::update_xcom_entry, xcom::delete_xcom_entry))
        .routes(routes!(clear::clear))
        .routes(routes!(backfills::list, backfills::create))
        .routes(routes!(backfills::dry_run))
        .routes(routes!(backfills::get_one))
        .routes(routes!(backfills::pause))
        .routes(routes!(backfills::unpause))
        .routes(routes!(backfills::cancel))
        .routes(routes!(import_errors::list))
        .routes(routes!(import_errors::get_one))
        .routes(routes!(pools::list, pools::create, pools::bulk))
        .routes(routes!(pools::get_one, pools::patch, pools::delete))
        .routes(routes!(dead_letters::list))
        .routes(routes!(dag_files::list))
        .routes(routes!(dag_files::get_one, dag_files::put, dag_files::delete))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::get_one, users::patch, users::delete))
        .routes(routes!(variables::list, variables::create, variables::bulk))
        .routes(routes!(variables::get_one, variables::patch, variables::delete))
        .routes(routes!(connections::list, connections::create, connections::bulk))
        .routes(routes!(connections::get_one, connections::patch, connections::delete))
        .routes(routes!(connection_tests::test_connection))
        .routes(routes!(connection_tests::enqueue_connection_test, connection_tests::get_connection_test))
        .routes(routes!(connection_tests::create_default_connections))
        .routes(routes!(event_logs::list))
        .routes(routes!(event_logs::get_one))
        .routes(routes!(config::get_config))
        .routes(routes!(config::get_config_value))
        .routes(routes!(jobs::get_jobs))
        .routes(routes!(plugins::get_plugins))
        .routes(routes!(plugins::import_errors))
        .routes(routes!(providers::get_providers))
        .routes(routes!(assets::get_assets))
        .routes(routes!(assets::get_asset))
        .routes(routes!(assets::get_asset_aliases))
        .routes(routes!(assets::get_asset_alias))
        .routes(routes!(assets::materialize_asset))
        .routes(routes!(asset_events::get_asset_events, asset_events::create_asset_event))
        .routes(routes!(asset_events::get_upstream_asset_events))
        .routes(routes!(queued_asset_events::get_asset_queued_events, queued_asset_events::delete_asset_queued_events))
        .routes(routes!(
            queued_asset_events::get_dag_asset_queued_events,
            queued_asset_events::delete_dag_asset_queued_events
        ))
        .routes(routes!(
            queued_asset_events::get_dag_asset_queued_event,
            queued_asset_events::delete_dag_asset_queued_event
        ))
}

/// 404 for paths no route matches: an HTML page for a browser outside `/api`, a 501 naming
/// the Airflow feature for an Airflow path gust has no equivalent of, else the API's JSON error.
pub(crate) async fn not_found(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let wants_html = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/html"));
    if wants_html && !uri.path().starts_with("/api/") {
        return crate::ui::not_found_page(uri.path());
    }
    if let Some(why) = unsupported_airflow_feature(uri.path()) {
        return ApiError::with_status(StatusCode::NOT_IMPLEMENTED, format!("{method} {}: {why}", uri.path()))
            .into_response();
    }
    ApiError::NotFound(format!("no route for {method} {}; the API lives under /api/v2", uri.path())).into_response()
}

/// Why gust does not serve an Airflow 3.3 API path, for the areas it has no equivalent of.
fn unsupported_airflow_feature(path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.strip_prefix("/api/v2/")?.split('/').collect();
    if segments.contains(&"state-store") {
        return Some(
            "Airflow's task and asset state store is not part of gust; keep state between tries in XComs or \
             variables (README, \"HTTP API\", lists what gust serves)",
        );
    }
    if segments.contains(&"hitlDetails") {
        return Some(
            "Airflow's human-in-the-loop (HITL) details are not part of gust, which has no HITL operator \
             (README, \"HTTP API\", lists what gust serves)",
        );
    }
    None
}

/// 405 for known paths asked with a method they do not support.
pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::with_status(StatusCode::METHOD_NOT_ALLOWED, format!("{} does not support {method}", uri.path()))
}
