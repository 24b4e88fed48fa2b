//! `/api/v2/plugins`: gust's plugins are its custom operators, executables
//! `gust-op-<name>` on the workers' plugin path; each is one Airflow plugin
//! whose `source` says where it lives. gust has no other kind of plugin
//! (macros, views, listeners, timetables), so those lists are always empty.
//! A plugin import error is a custom operator whose `--describe` failed.

use std::collections::BTreeMap;

use axum::{extract::State, Json};
use gust_shared::db::{self, providers::AdvertisedOperator};
use serde::Serialize;
use utoipa::ToSchema;

use super::pagination::PageParams;
use crate::{error::ApiError, extract::ApiQuery, AppState};

/// Airflow's `PluginResponse`; every list but `name` and `source` is empty in gust.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PluginResponse {
    /// `gust-op-<name>`.
    name: String,
    macros: Vec<String>,
    flask_blueprints: Vec<String>,
    #[schema(value_type = Vec<Object>)]
    fastapi_apps: Vec<serde_json::Value>,
    #[schema(value_type = Vec<Object>)]
    fastapi_root_middlewares: Vec<serde_json::Value>,
    #[schema(value_type = Vec<Object>)]
    external_views: Vec<serde_json::Value>,
    #[schema(value_type = Vec<Object>)]
    react_apps: Vec<serde_json::Value>,
    #[schema(value_type = Vec<Object>)]
    appbuilder_views: Vec<serde_json::Value>,
    #[schema(value_type = Vec<Object>)]
    appbuilder_menu_items: Vec<serde_json::Value>,
    global_operator_extra_links: Vec<String>,
    operator_extra_links: Vec<String>,
    /// Where the executable is: `<path> on <worker>`, for each live worker that has it.
    source: String,
    listeners: Vec<String>,
    timetables: Vec<String>,
}

/// Airflow's `PluginCollectionResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PluginCollection {
    plugins: Vec<PluginResponse>,
    total_entries: i64,
}

/// Airflow's `PluginImportErrorResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PluginImportErrorResponse {
    /// `<path> on <worker>`.
    source: String,
    /// Why `--describe` failed.
    error: String,
}

/// Airflow's `PluginImportErrorCollectionResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PluginImportErrorCollection {
    import_errors: Vec<PluginImportErrorResponse>,
    total_entries: i64,
}

/// `GET /api/v2/plugins`: the custom operators live workers advertise, one plugin per name.
#[utoipa::path(get, path = "/api/v2/plugins", tag = "Plugin", operation_id = "get_plugins", params(PageParams), responses((status = 200, body = PluginCollection)))]
pub(crate) async fn get_plugins(
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<PluginCollection>, ApiError> {
    let page = page.page()?;
    let db = state.db().await?;
    let plugins = plugins(db::providers::custom_operators(&db).await?);
    let total_entries = i64::try_from(plugins.len()).unwrap_or(i64::MAX);
    Ok(Json(PluginCollection { plugins: page.slice(plugins), total_entries }))
}

/// `GET /api/v2/plugins/importErrors`: custom operators of live workers that could not describe themselves.
#[utoipa::path(get, path = "/api/v2/plugins/importErrors", tag = "Plugin", operation_id = "import_errors", responses((status = 200, body = PluginImportErrorCollection)))]
pub(crate) async fn import_errors(
    State(state): State<AppState>,
) -> Result<Json<PluginImportErrorCollection>, ApiError> {
    let db = state.db().await?;
    let import_errors: Vec<PluginImportErrorResponse> = db::providers::custom_operators(&db)
        .await?
        .into_iter()
        .filter_map(|op| {
            let error = op.describe_error.clone()?;
            Some(PluginImportErrorResponse { source: source(&op), error })
        })
        .collect();
    let total_entries = i64::try_from(import_errors.len()).unwrap_or(i64::MAX);
    Ok(Json(PluginImportErrorCollection { import_errors, total_entries }))
}

fn source(op: &AdvertisedOperator) -> String {
    format!("{} on {}", op.path.as_deref().unwrap_or("gust-op-?"), op.worker)
}

/// One plugin per custom operator name, its sources joined.
fn plugins(operators: Vec<AdvertisedOperator>) -> Vec<PluginResponse> {
    let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for op in &operators {
        by_name.entry(op.name.clone()).or_default().push(source(op));
    }
    by_name
        .into_iter()
        .map(|(name, sources)| PluginResponse {
            name: format!("gust-op-{name}"),
            macros: Vec::new(),
            flask_blueprints: Vec::new(),
            fastapi_apps: Vec::new(),
            fastapi_root_middlewares: Vec::new(),
            external_views: Vec::new(),
            react_apps: Vec::new(),
            appbuilder_views: Vec::new(),
            appbuilder_menu_items: Vec::new(),
            global_operator_extra_links: Vec::new(),
            operator_extra_links: Vec::new(),
            source: sources.join("; "),
            listeners: Vec::new(),
            timetables: Vec::new(),
        })
        .collect()
}
