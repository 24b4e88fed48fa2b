//! `GET …/taskInstances/{task_id}/links` (Airflow's extra links: gust's
//! operators define none, so a task instance has an empty set) and
//! `GET …/externalLogUrl/{try_number}` (gust keeps task logs in PostgreSQL,
//! with no external log handler, so it answers as Airflow does without one).

use std::collections::BTreeMap;

use axum::{extract::State, Json};
use gust_shared::db::task_instances::listing;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    path_params::TaskInstancePath,
    task_instances::{ti_or_404, MapIndexParams},
};
use crate::{
    error::ApiError,
    extract::{ApiPath, ApiQuery},
    AppState,
};

/// Airflow's `ExtraLinkCollectionResponse`: link name → URL (null when the link has none for this try).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ExtraLinkCollection {
    extra_links: BTreeMap<String, Option<String>>,
    total_entries: i64,
}

/// Query of `…/links`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct LinksParams {
    /// Which instance of a mapped task; -1 (the default) for an unmapped task.
    map_index: Option<i32>,
    /// The try whose links to build; the current try when absent.
    try_number: Option<i32>,
}

/// `GET …/taskInstances/{task_id}/links?map_index&try_number`: the task
/// instance's extra links, always none in gust; a 404 when the task
/// instance, or the try asked for, does not exist.
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/links", operation_id = "get_extra_links", tag = "Task Instance", params(TaskInstancePath, LinksParams), responses((status = 200, body = ExtraLinkCollection)))]
pub(crate) async fn get_extra_links(
    State(state): State<AppState>,
    ApiPath((dag_id, run_id, task_id)): ApiPath<(String, String, String)>,
    ApiQuery(params): ApiQuery<LinksParams>,
) -> Result<Json<ExtraLinkCollection>, ApiError> {
    let db = state.db().await?;
    let ti = ti_or_404(&db, &dag_id, &run_id, &task_id, params.map_index.unwrap_or(-1)).await?;
    if let Some(try_number) = params.try_number.filter(|n| *n != ti.try_number) {
        let tries = listing::tries(&db, ti.id).await?;
        if !tries.iter().any(|t| t.try_number == try_number) {
            return Err(ApiError::NotFound(format!(
                "task instance `{task_id}` has no try {try_number} in DAG run `{run_id}`; its current try is {}",
                ti.try_number
            )));
        }
    }
    Ok(Json(ExtraLinkCollection { extra_links: BTreeMap::new(), total_entries: 0 }))
}

/// Airflow's `ExternalLogUrlResponse`, for the OpenAPI document: gust never answers one.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ExternalLogUrlResponse {
    url: String,
}

/// `GET …/taskInstances/{task_id}/externalLogUrl/{try_number}?map_index`: a
/// 400, as Airflow answers when its log handler has no external log store:
/// gust's logs are in PostgreSQL and served by `…/logs/{try_number}`.
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/externalLogUrl/{try_number}", operation_id = "get_external_log_url", tag = "Task Instance", params(TaskInstancePath, ("try_number" = i32, Path, minimum = 1, description = "The try, from 1"), MapIndexParams), responses((status = 200, body = ExternalLogUrlResponse), (status = 400, description = "gust has no external log store")))]
pub(crate) async fn get_external_log_url(
    ApiPath((_dag_id, _run_id, task_id, try_number)): ApiPath<(String, String, String, i32)>,
    ApiQuery(_params): ApiQuery<MapIndexParams>,
) -> Result<Json<ExternalLogUrlResponse>, ApiError> {
    if try_number < 1 {
        return Err(ApiError::BadRequest(format!("`try_number` must be 1 or more, got {try_number}")));
    }
    Err(ApiError::BadRequest(format!(
        "Task log handler does not support external logs: gust keeps task logs in PostgreSQL; read this try's at \
         …/taskInstances/{task_id}/logs/{try_number}"
    )))
}
