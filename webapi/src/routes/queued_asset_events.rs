//! Queued asset events (Airflow's asset DAG-run queue): an asset's events
//! waiting to trigger a DAG scheduled on it, read per asset, per DAG or per
//! both, and deleted by hand so they trigger nothing.

use axum::{extract::State, http::StatusCode, Json};
use chrono::{DateTime, Utc};
use gust_shared::db::{
    self,
    assets::reads::{QueuedEventFilter, QueuedEventRow},
};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::{
    list_query::{parse_time, Filters, QueryPairs},
    path_params::DagPath,
};
use crate::{
    error::ApiError,
    extract::{ApiPath, ApiQuery},
    AppState,
};

/// Airflow's `QueuedEventResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct QueuedEventResponse {
    dag_id: String,
    asset_id: i64,
    /// When the first of the waiting events came.
    created_at: DateTime<Utc>,
    dag_display_name: String,
}

/// Airflow's `QueuedEventCollectionResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct QueuedEventCollectionResponse {
    queued_events: Vec<QueuedEventResponse>,
    total_entries: i64,
}

impl From<QueuedEventRow> for QueuedEventResponse {
    fn from(row: QueuedEventRow) -> Self {
        Self {
            dag_display_name: row.dag_id.clone(),
            dag_id: row.dag_id,
            asset_id: row.asset_id,
            created_at: row.created_at,
        }
    }
}

/// `{dag_id}/assets/{asset_id}`: a DAG and an asset it is scheduled on.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // never constructed: it exists for its `IntoParams` impl
pub(crate) struct DagAssetPath {
    /// The DAG's id.
    dag_id: String,
    /// The asset's id.
    asset_id: i64,
}

/// The `before` query parameter of every queued-event route.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // never constructed: it exists for its `IntoParams` impl
pub(crate) struct BeforeParam {
    /// Only events queued before this time (ISO 8601).
    before: Option<DateTime<Utc>>,
}

/// The filter of a queued-event route: its path's asset and DAG, and `before`.
fn filter_of(
    asset_id: Option<i64>,
    dag_id: Option<String>,
    pairs: Vec<(String, String)>,
) -> Result<QueuedEventFilter, ApiError> {
    let query = QueryPairs(pairs);
    let before = query.last("before").map(|value| parse_time("before", value)).transpose()?;
    Ok(QueuedEventFilter { asset_id, dag_id, before })
}

/// The queued events `filter` keeps, as a collection.
async fn collection(
    state: &AppState,
    filter: &QueuedEventFilter,
) -> Result<Json<QueuedEventCollectionResponse>, ApiError> {
    let db = state.db().await?;
    let rows = db::assets::reads::queued_events(&db, filter).await?;
    let total_entries = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    Ok(Json(QueuedEventCollectionResponse { queued_events: rows.into_iter().map(Into::into).collect(), total_entries }))
}

/// Deletes the queued events `filter` keeps; 404 with `missing` when there are none.
async fn delete(state: &AppState, filter: &QueuedEventFilter, missing: String) -> Result<StatusCode, ApiError> {
    let db = state.db().await?;
    match db::assets::reads::delete_queued_events(&db, filter).await? {
        0 => Err(ApiError::NotFound(missing)),
        deleted => {
            tracing::info!(deleted, asset_id = ?filter.asset_id, dag_id = ?filter.dag_id, "queued asset events deleted");
            Ok(StatusCode::NO_CONTENT)
        }
    }
}

/// `GET /api/v2/assets/{asset_id}/queuedEvents`: the DAGs the asset's events wait to trigger.
#[utoipa::path(get, path = "/api/v2/assets/{asset_id}/queuedEvents", operation_id = "get_asset_queued_events", tag = "Asset", params(super::assets::AssetPath, Filters<BeforeParam>), responses((status = 200, body = QueuedEventCollectionResponse)))]
pub(crate) async fn get_asset_queued_events(
    State(state): State<AppState>,
    ApiPath(asset_id): ApiPath<i64>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> Result<Json<QueuedEventCollectionResponse>, ApiError> {
    collection(&state, &filter_of(Some(asset_id), None, pairs)?).await
}

/// `DELETE /api/v2/assets/{asset_id}/queuedEvents`: drops the asset's waiting
/// events for every DAG; 404 when it has none.
#[utoipa::path(delete, path = "/api/v2/assets/{asset_id}/queuedEvents", operation_id = "delete_asset_queued_events", tag = "Asset", params(super::assets::AssetPath, Filters<BeforeParam>), responses((status = 204, description = "Deleted")))]
pub(crate) async fn delete_asset_queued_events(
    State(state): State<AppState>,
    ApiPath(asset_id): ApiPath<i64>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> Result<StatusCode, ApiError> {
    let filter = filter_of(Some(asset_id), None, pairs)?;
    delete(&state, &filter, format!("no queued event of the asset with id `{asset_id}` was found")).await
}

/// `GET /api/v2/dags/{dag_id}/assets/queuedEvents`: the assets whose events wait to trigger the DAG.
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/assets/queuedEvents", operation_id = "get_dag_asset_queued_events", tag = "Asset", params(DagPath, Filters<BeforeParam>), responses((status = 200, body = QueuedEventCollectionResponse)))]
pub(crate) async fn get_dag_asset_queued_events(
    State(state): State<AppState>,
    ApiPath(dag_id): ApiPath<String>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> Result<Json<QueuedEventCollectionResponse>, ApiError> {
    collection(&state, &filter_of(None, Some(dag_id), pairs)?).await
}

/// `DELETE /api/v2/dags/{dag_id}/assets/queuedEvents`: drops every event
/// waiting to trigger the DAG; 404 when there is none.
#[utoipa::path(delete, path = "/api/v2/dags/{dag_id}/assets/queuedEvents", operation_id = "delete_dag_asset_queued_events", tag = "Asset", params(DagPath, Filters<BeforeParam>), responses((status = 204, description = "Deleted")))]
pub(crate) async fn delete_dag_asset_queued_events(
    State(state): State<AppState>,
    ApiPath(dag_id): ApiPath<String>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> Result<StatusCode, ApiError> {
    let missing = format!("no queued asset event for DAG `{dag_id}` was found");
    delete(&state, &filter_of(None, Some(dag_id), pairs)?, missing).await
}

/// `GET /api/v2/dags/{dag_id}/assets/{asset_id}/queuedEvents`: whether the
/// asset's events wait to trigger the DAG, and since when; 404 when they do not.
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/assets/{asset_id}/queuedEvents", operation_id = "get_dag_asset_queued_event", tag = "Asset", params(DagAssetPath, Filters<BeforeParam>), responses((status = 200, body = QueuedEventResponse)))]
pub(crate) async fn get_dag_asset_queued_event(
    State(state): State<AppState>,
    ApiPath((dag_id, asset_id)): ApiPath<(String, i64)>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> Result<Json<QueuedEventResponse>, ApiError> {
    let filter = filter_of(Some(asset_id), Some(dag_id.clone()), pairs)?;
    let db = state.db().await?;
    let row = db::assets::reads::queued_events(&db, &filter).await?.pop().ok_or_else(|| {
        ApiError::NotFound(format!("no queued event of the asset with id `{asset_id}` for DAG `{dag_id}` was found"))
    })?;
    Ok(Json(row.into()))
}

/// `DELETE /api/v2/dags/{dag_id}/assets/{asset_id}/queuedEvents`: drops the
/// asset's events waiting to trigger the DAG; 404 when there are none.
#[utoipa::path(delete, path = "/api/v2/dags/{dag_id}/assets/{asset_id}/queuedEvents", operation_id = "delete_dag_asset_queued_event", tag = "Asset", params(DagAssetPath, Filters<BeforeParam>), responses((status = 204, description = "Deleted")))]
pub(crate) async fn delete_dag_asset_queued_event(
    State(state): State<AppState>,
    ApiPath((dag_id, asset_id)): ApiPath<(String, i64)>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> Result<StatusCode, ApiError> {
    let missing = format!("no queued event of the asset with id `{asset_id}` for DAG `{dag_id}` was found");
    delete(&state, &filter_of(Some(asset_id), Some(dag_id), pairs)?, missing).await
}
