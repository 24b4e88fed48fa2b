//! `…/taskInstances/{task_id}/xcomEntries`: the values a task pushed for its
//! downstream tasks, in Airflow's shapes; operators may also add, change and
//! delete them by hand. An entry made here is stored as the task's current
//! try would have stored it, so templates (`ti.xcom_pull`) and mapping read it
//! alike; the task's next successful try replaces all of its entries.

use axum::{extract::State, http::StatusCode, Json};
use chrono::{DateTime, Utc};
use gust_shared::db::{self, runs::DagRunRow, task_instances::listing::TaskInstanceRow, xcom::XcomEntry};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::path_params::TaskInstancePath;
use super::{dag_runs::run_or_404, pagination::PageParams, task_instances::ti_or_404};
use crate::{
    error::ApiError,
    extract::{ApiJson, ApiPath, ApiQuery},
    AppState,
};

/// Longest accepted XCom key (Airflow's `XCOM_KEY_LEN`-sized column holds 512).
const MAX_KEY_LEN: usize = 512;

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
    /// When the entry's run was due.
    run_after: DateTime<Utc>,
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
    fn of(ti: &TaskInstanceRow, run: &DagRunRow, entry: XcomEntry, with_value: bool) -> Self {
        Self {
            key: entry.key,
            timestamp: entry.timestamp,
            logical_date: run.logical_date,
            run_after: run.run_after,
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
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries", tag = "XCom", operation_id = "get_xcom_entries", params(TaskInstancePath, PageParams, XcomParams), responses((status = 200, body = XcomCollection)))]
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
    let xcom_entries = page.slice(entries).into_iter().map(|e| XcomResponse::of(&ti, &run, e, false)).collect();
    Ok(Json(XcomCollection { xcom_entries, total_entries }))
}

/// `GET …/xcomEntries/{xcom_key}?map_index&stringify`: one entry with its value
/// (a JSON string of the value when `stringify=true`).
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries/{xcom_key}", tag = "XCom", operation_id = "get_xcom_entry", params(TaskInstancePath, ("xcom_key" = String, Path, description = "The XCom's key"), XcomParams), responses((status = 200, body = XcomResponse)))]
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
    Ok(Json(XcomResponse::of(&ti, &run, entry, true)))
}

/// Body of `POST …/xcomEntries` (Airflow's `XComCreateBody`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct XcomCreateBody {
    /// The key, 1-512 characters.
    #[schema(min_length = 1, max_length = 512)]
    key: String,
    /// Any JSON value (null too).
    #[schema(value_type = Object)]
    value: serde_json::Value,
    /// The task instance's map index; -1 (the default) for an unmapped task.
    #[serde(default = "unmapped")]
    #[schema(default = -1, minimum = -1)]
    map_index: i32,
}

/// Body of `PATCH …/xcomEntries/{xcom_key}` (Airflow's `XComUpdateBody`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct XcomUpdateBody {
    /// The new value: any JSON value (null too).
    #[schema(value_type = Object)]
    value: serde_json::Value,
    /// The task instance's map index; -1 (the default) for an unmapped task.
    #[serde(default = "unmapped")]
    #[schema(default = -1, minimum = -1)]
    map_index: i32,
}

/// Query of `DELETE …/xcomEntries/{xcom_key}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct XcomDeleteParams {
    /// The task instance's map index; -1 (the default) for an unmapped task.
    #[param(minimum = -1)]
    map_index: Option<i32>,
}

/// The serde default of `map_index`.
fn unmapped() -> i32 {
    -1
}

/// Checks a key and map index given for a write.
fn check_entry(key: &str, map_index: i32) -> Result<(), ApiError> {
    if key.is_empty() {
        return Err(ApiError::BadRequest("`key` must not be empty; name the XCom, e.g. \"return_value\"".into()));
    }
    if key.chars().count() > MAX_KEY_LEN {
        return Err(ApiError::BadRequest(format!("`key` must be at most {MAX_KEY_LEN} characters")));
    }
    if map_index < -1 {
        return Err(ApiError::BadRequest(format!(
            "`map_index` must be -1 (an unmapped task) or a mapped task's index (0 or more), got {map_index}"
        )));
    }
    Ok(())
}

/// The 404 for an XCom key a task instance does not have.
fn no_such_xcom(ti: &TaskInstanceRow, key: &str) -> ApiError {
    let mapped = if ti.map_index == -1 { String::new() } else { format!(" (map_index {})", ti.map_index) };
    ApiError::NotFound(format!(
        "task instance `{}`{mapped} of DAG run `{}` has no XCom with key `{key}`",
        ti.task_id, ti.run_id
    ))
}

/// `POST …/xcomEntries`: adds an XCom to a task instance (`map_index` in the
/// body); 201 with the entry, 409 when the key is taken (change it with
/// `PATCH`). Needs the operator role.
#[utoipa::path(post, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries", tag = "XCom", params(TaskInstancePath), request_body = XcomCreateBody, responses((status = 201, body = XcomResponse), (status = 409, description = "The task instance already has an XCom with this key")))]
pub(crate) async fn create_xcom_entry(
    State(state): State<AppState>,
    ApiPath((dag_id, run_id, task_id)): ApiPath<(String, String, String)>,
    ApiJson(body): ApiJson<XcomCreateBody>,
) -> Result<(StatusCode, Json<XcomResponse>), ApiError> {
    check_entry(&body.key, body.map_index)?;
    let db = state.db().await?;
    let ti = ti_or_404(&db, &dag_id, &run_id, &task_id, body.map_index).await?;
    let run = run_or_404(&db, &dag_id, &run_id).await?;
    let Some(entry) = db::xcom::insert(&db, ti.id, ti.try_number, &body.key, &body.value).await? else {
        return Err(ApiError::Conflict(format!(
            "task instance `{task_id}` of DAG run `{run_id}` already has an XCom with key `{}`; \
             change it with PATCH …/xcomEntries/{}",
            body.key, body.key
        )));
    };
    tracing::info!(dag_id, run_id, task_id, key = body.key, "XCom created through the API");
    Ok((StatusCode::CREATED, Json(XcomResponse::of(&ti, &run, entry, true))))
}

/// `PATCH …/xcomEntries/{xcom_key}`: replaces an XCom's value (`map_index` in
/// the body); answers the entry. Needs the operator role.
#[utoipa::path(patch, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries/{xcom_key}", tag = "XCom", params(TaskInstancePath, ("xcom_key" = String, Path, description = "The XCom's key")), request_body = XcomUpdateBody, responses((status = 200, body = XcomResponse)))]
pub(crate) async fn update_xcom_entry(
    State(state): State<AppState>,
    ApiPath((dag_id, run_id, task_id, key)): ApiPath<(String, String, String, String)>,
    ApiJson(body): ApiJson<XcomUpdateBody>,
) -> Result<Json<XcomResponse>, ApiError> {
    check_entry(&key, body.map_index)?;
    let db = state.db().await?;
    let ti = ti_or_404(&db, &dag_id, &run_id, &task_id, body.map_index).await?;
    let run = run_or_404(&db, &dag_id, &run_id).await?;
    let entry = db::xcom::update(&db, ti.id, &key, &body.value).await?.ok_or_else(|| no_such_xcom(&ti, &key))?;
    tracing::info!(dag_id, run_id, task_id, key, "XCom changed through the API");
    Ok(Json(XcomResponse::of(&ti, &run, entry, true)))
}

/// `DELETE …/xcomEntries/{xcom_key}?map_index`: deletes an XCom; 204. Needs the operator role.
#[utoipa::path(delete, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries/{xcom_key}", tag = "XCom", params(TaskInstancePath, ("xcom_key" = String, Path, description = "The XCom's key"), XcomDeleteParams), responses((status = 204, description = "Deleted")))]
pub(crate) async fn delete_xcom_entry(
    State(state): State<AppState>,
    ApiPath((dag_id, run_id, task_id, key)): ApiPath<(String, String, String, String)>,
    ApiQuery(params): ApiQuery<XcomDeleteParams>,
) -> Result<StatusCode, ApiError> {
    let map_index = params.map_index.unwrap_or(-1);
    check_entry(&key, map_index)?;
    let db = state.db().await?;
    let ti = ti_or_404(&db, &dag_id, &run_id, &task_id, map_index).await?;
    if !db::xcom::delete(&db, ti.id, &key).await? {
        return Err(no_such_xcom(&ti, &key));
    }
    tracing::info!(dag_id, run_id, task_id, key, "XCom deleted through the API");
    Ok(StatusCode::NO_CONTENT)
}
