//! `…/taskInstances/{task_id}/xcomEntries`: the values a task pushed for its
//! downstream tasks, in Airflow's shapes.

use axum::{extract::State, Json};
use chrono::{DateTime, Utc};
use gust_shared::db::{self, task_instances::listing::TaskInstanceRow, xcom::XcomEntry};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::path_params::TaskInstancePath;
use super::{dag_runs::run_or_404, pagination::PageParams, task_instances::ti_or_404};
use crate::{
    error::ApiError,
    extract::{ApiPath, ApiQuery},
    AppState,
};

/// Airflow's `XComResponse` (list items) and, with `value`, `XComResponseNative`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct XcomResponse {
    key: String,
    timestamp: DateTime<Utc>,
    logical_date: Option<DateTime<Utc>>,
    map_index: i32,
    task_id: String,
    dag_id: String,
    run_id: String,
    dag_display_name: String,
    task_display_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<serde_json::Value>,
}

/// Airflow's `XComCollectionResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct XcomCollection {
    xcom_entries: Vec<XcomResponse>,
    total_entries: i64,
}

/// Query of the XCom routes besides paging.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct XcomParams {
    map_index: Option<i32>,
    xcom_key: Option<String>,
    stringify: Option<bool>,
}

impl XcomResponse {
    fn of(ti: &TaskInstanceRow, logical_date: Option<DateTime<Utc>>, entry: XcomEntry, with_value: bool) -> Self {
        Self {
            key: entry.key,
            timestamp: entry.timestamp,
            logical_date,
            map_index: ti.map_index,
            task_id: ti.task_id.clone(),
            dag_id: ti.dag_id.clone(),
            run_id: ti.run_id.clone(),
            dag_display_name: ti.dag_id.clone(),
            task_display_name: ti.task_id.clone(),
            value: with_value.then_some(entry.value),
        }
    }
}

/// `GET …/xcomEntries?map_index&xcom_key&limit&offset`
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries", tag = "XCom", params(TaskInstancePath, PageParams, XcomParams), responses((status = 200, body = XcomCollection)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    ApiPath((dag_id, run_id, task_id)): ApiPath<(String, String, String)>,
    ApiQuery(page): ApiQuery<PageParams>,
    ApiQuery(params): ApiQuery<XcomParams>,
) -> Result<Json<XcomCollection>, ApiError> {
    let page = page.page()?;
    let db = state.db().await?;
    let ti = ti_or_404(&db, &dag_id, &run_id, &task_id, params.map_index.unwrap_or(-1)).await?;
    let run = run_or_404(&db, &dag_id, &run_id).await?;
    let mut entries = db::xcom::list(&db, ti.id).await?;
    if let Some(key) = &params.xcom_key {
        entries.retain(|e| &e.key == key);
    }
    let total_entries = i64::try_from(entries.len()).unwrap_or(i64::MAX);
    let xcom_entries =
        page.slice(entries).into_iter().map(|e| XcomResponse::of(&ti, run.logical_date, e, false)).collect();
    Ok(Json(XcomCollection { xcom_entries, total_entries }))
}

/// `GET …/xcomEntries/{xcom_key}?map_index&stringify`: one entry with its value
/// (a JSON string of the value when `stringify=true`).
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries/{xcom_key}", tag = "XCom", params(TaskInstancePath, ("xcom_key" = String, Path, description = "The XCom's key"), XcomParams), responses((status = 200, body = XcomResponse)))]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    ApiPath((dag_id, run_id, task_id, key)): ApiPath<(String, String, String, String)>,
    ApiQuery(params): ApiQuery<XcomParams>,
) -> Result<Json<XcomResponse>, ApiError> {
    let db = state.db().await?;
    let ti = ti_or_404(&db, &dag_id, &run_id, &task_id, params.map_index.unwrap_or(-1)).await?;
    let run = run_or_404(&db, &dag_id, &run_id).await?;
    let Some(mut entry) = db::xcom::get(&db, ti.id, &key).await? else {
        return Err(ApiError::NotFound(format!(
            "task instance `{task_id}` of DAG run `{run_id}` has no XCom with key `{key}`"
        )));
    };
    if params.stringify.unwrap_or(false) {
        entry.value = serde_json::Value::String(entry.value.to_string());
    }
    Ok(Json(XcomResponse::of(&ti, run.logical_date, entry, true)))
}
