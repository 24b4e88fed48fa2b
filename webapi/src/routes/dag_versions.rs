//! `/api/v2/dags/{dag_id}/dagVersions`: the stored versions of a DAG, numbered
//! 1, 2, … per DAG in the order they were first parsed.

use axum::{extract::State, Json};
use gust_shared::db;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    dag_runs::DagVersionResponse,
    dags::{dag_or_404, BUNDLE_NAME},
    pagination::{order_by_param, OrderParams, PageParams},
    path_params::DagPath,
};
use crate::{
    error::ApiError,
    extract::{ApiPath, ApiQuery},
    AppState,
};

/// Airflow's `DAGVersionCollectionResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DagVersionCollection {
    dag_versions: Vec<DagVersionResponse>,
    total_entries: i64,
}

/// The filters of `GET …/dagVersions`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct VersionFilters {
    /// Only this version.
    version_number: Option<i32>,
    /// Only versions of this bundle (gust has one, `dags-folder`).
    bundle_name: Option<String>,
    /// Only versions of this bundle version (gust's versions have none).
    bundle_version: Option<String>,
}

/// `{dag_id}/dagVersions/{version_number}`: one version of a DAG.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // never constructed: it exists for its `IntoParams` impl
pub(crate) struct DagVersionPath {
    /// The DAG's id.
    dag_id: String,
    /// The version: 1 for the first one stored, one more for each change.
    version_number: i32,
}

order_by_param!(VersionOrder, db::dags::VERSION_ORDER_FIELDS);

/// `GET /api/v2/dags/{dag_id}/dagVersions`: a page of the DAG's versions, oldest first unless `order_by` says otherwise.
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/dagVersions", operation_id = "get_dag_versions", tag = "DagVersion", params(DagPath, PageParams, VersionFilters, VersionOrder), responses((status = 200, body = DagVersionCollection)))]
pub(crate) async fn get_dag_versions(
    State(state): State<AppState>,
    ApiPath(dag_id): ApiPath<String>,
    ApiQuery(page): ApiQuery<PageParams>,
    ApiQuery(filters): ApiQuery<VersionFilters>,
    ApiQuery(order): ApiQuery<OrderParams>,
) -> Result<Json<DagVersionCollection>, ApiError> {
    let page = page.page()?;
    let order_by = order.sql(db::dags::VERSION_ORDER_FIELDS, "id ASC", "id ASC")?;
    let db = state.db().await?;
    dag_or_404(&db, &dag_id).await?;
    let other_bundle = filters.bundle_name.as_deref().is_some_and(|name| !name.is_empty() && name != BUNDLE_NAME)
        || filters.bundle_version.as_deref().is_some_and(|version| !version.is_empty());
    if other_bundle {
        return Ok(Json(DagVersionCollection { dag_versions: Vec::new(), total_entries: 0 }));
    }
    let (versions, total_entries) =
        db::dags::version_page(&db, &dag_id, filters.version_number, &order_by, page.limit, page.offset).await?;
    Ok(Json(DagVersionCollection {
        dag_versions: versions.iter().map(DagVersionResponse::from).collect(),
        total_entries,
    }))
}

/// `GET /api/v2/dags/{dag_id}/dagVersions/{version_number}`
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/dagVersions/{version_number}", operation_id = "get_dag_version", tag = "DagVersion", params(DagVersionPath), responses((status = 200, body = DagVersionResponse)))]
pub(crate) async fn get_dag_version(
    State(state): State<AppState>,
    ApiPath((dag_id, version_number)): ApiPath<(String, i32)>,
) -> Result<Json<DagVersionResponse>, ApiError> {
    let db = state.db().await?;
    let (versions, _) = db::dags::version_page(&db, &dag_id, Some(version_number), "id ASC", 1, 0).await?;
    match versions.first() {
        Some(version) => Ok(Json(version.into())),
        None => {
            dag_or_404(&db, &dag_id).await?;
            Err(ApiError::NotFound(format!(
                "DAG `{dag_id}` has no version {version_number}; GET /api/v2/dags/{dag_id}/dagVersions lists its versions"
            )))
        }
    }
}
