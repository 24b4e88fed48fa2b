//! `…/taskInstances/{task_id}/tries`: every try of a task instance, the
//! finished ones from their history rows and the one in progress.

use super::path_params::{MappedTaskInstancePath, TaskInstancePath};
use axum::{extract::State, Json};
use chrono::{DateTime, Utc};
use gust_shared::db::{
    self,
    task_instances::listing::{TaskInstanceRow, TryRow},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    dag_runs::seconds_between,
    task_instances::{airflow_state, ti_or_404},
};
use crate::{
    error::ApiError,
    extract::{ApiPath, ApiQuery},
    AppState,
};

/// Airflow's `TaskInstanceHistoryResponse`, plus gust's `exit_code` and `failure_reason`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TaskInstanceHistoryResponse {
    task_id: String,
    dag_id: String,
    dag_run_id: String,
    map_index: i32,
    start_date: Option<DateTime<Utc>>,
    end_date: Option<DateTime<Utc>>,
    duration: Option<f64>,
    state: Option<&'static str>,
    try_number: i32,
    max_tries: i32,
    task_display_name: String,
    dag_display_name: String,
    hostname: Option<String>,
    unixname: Option<String>,
    pool: String,
    pool_slots: i32,
    queue: Option<String>,
    priority_weight: Option<i32>,
    operator: Option<String>,
    operator_name: Option<String>,
    queued_when: Option<DateTime<Utc>>,
    scheduled_when: Option<DateTime<Utc>>,
    pid: Option<i32>,
    executor: Option<&'static str>,
    executor_config: &'static str,
    dag_version: Option<serde_json::Value>,
    /// gust only: the exit code of the try's process.
    exit_code: Option<i32>,
    /// gust only: why the try failed (`exit code 3`, `timed out after 2s`).
    failure_reason: Option<String>,
}

/// Airflow's `TaskInstanceHistoryCollectionResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TaskInstanceHistoryCollection {
    task_instances: Vec<TaskInstanceHistoryResponse>,
    total_entries: i64,
}

/// Query of the tries routes without a map index in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TriesParams {
    /// Which instance of a mapped task; -1 (the default) for an unmapped task.
    map_index: Option<i32>,
}

impl TaskInstanceHistoryResponse {
    /// One try of `ti` with what every try shares (names, queue, operator) taken from `ti`.
    fn of_try(ti: &TaskInstanceRow, try_row: TryRow) -> Self {
        let mut response = Self::current(ti);
        response.try_number = try_row.try_number;
        response.state = airflow_state(try_row.state);
        response.duration = seconds_between(try_row.start_date, Some(try_row.end_date));
        response.start_date = try_row.start_date;
        response.end_date = Some(try_row.end_date);
        response.hostname = try_row.hostname;
        response.queued_when = try_row.queued_at;
        response.pid = None;
        response.exit_code = try_row.exit_code;
        response.failure_reason = try_row.failure_reason;
        response
    }

    /// The try `ti` is on now, as the task instance row describes it.
    fn current(ti: &TaskInstanceRow) -> Self {
        Self {
            task_id: ti.task_id.clone(),
            dag_id: ti.dag_id.clone(),
            dag_run_id: ti.run_id.clone(),
            map_index: ti.map_index,
            start_date: ti.start_date,
            end_date: ti.end_date,
            duration: seconds_between(ti.start_date, ti.end_date),
            state: airflow_state(ti.state),
            try_number: ti.try_number,
            max_tries: ti.max_tries,
            task_display_name: ti.task_id.clone(),
            dag_display_name: ti.dag_id.clone(),
            hostname: ti.hostname.clone(),
            unixname: None,
            pool: ti.pool.clone(),
            pool_slots: ti.pool_slots,
            queue: Some(ti.queue.clone()),
            priority_weight: Some(ti.priority_weight),
            operator: Some(ti.operator.clone()),
            operator_name: Some(ti.operator.clone()),
            queued_when: ti.queued_at,
            scheduled_when: None,
            pid: ti.pid,
            executor: Some("gust"),
            executor_config: "{}",
            dag_version: None,
            exit_code: ti.exit_code,
            failure_reason: ti.failure_reason.clone(),
        }
    }
}

/// Every try of `ti`, oldest first: its finished tries, then the current
/// one when it has started (try number above 0) and has no history row yet
/// (queued or running, say).
fn all_tries(ti: &TaskInstanceRow, finished: Vec<TryRow>) -> Vec<TaskInstanceHistoryResponse> {
    let current_is_recorded = finished.iter().any(|t| t.try_number == ti.try_number);
    let mut tries: Vec<_> = finished.into_iter().map(|t| TaskInstanceHistoryResponse::of_try(ti, t)).collect();
    if ti.try_number > 0 && !current_is_recorded {
        tries.push(TaskInstanceHistoryResponse::current(ti));
    }
    tries
}

/// The task instance and all its tries, or a 404 naming what is missing.
async fn load(
    state: &AppState,
    path: (String, String, String),
    map_index: Option<i32>,
) -> Result<(TaskInstanceRow, Vec<TaskInstanceHistoryResponse>), ApiError> {
    let (dag_id, run_id, task_id) = path;
    let db = state.db().await?;
    let ti = ti_or_404(&db, &dag_id, &run_id, &task_id, map_index.unwrap_or(-1)).await?;
    let finished = db::task_instances::listing::tries(&db, ti.id).await?;
    let tries = all_tries(&ti, finished);
    Ok((ti, tries))
}

/// `GET …/taskInstances/{task_id}/tries?map_index`
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/tries", operation_id = "get_task_instance_tries", tag = "Task Instance", params(TaskInstancePath, TriesParams), responses((status = 200, body = TaskInstanceHistoryCollection)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<(String, String, String)>,
    ApiQuery(params): ApiQuery<TriesParams>,
) -> Result<Json<TaskInstanceHistoryCollection>, ApiError> {
    collection(&state, path, params.map_index).await
}

/// `GET …/taskInstances/{task_id}/{map_index}/tries`
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}/tries", operation_id = "get_mapped_task_instance_tries", tag = "Task Instance", params(MappedTaskInstancePath), responses((status = 200, body = TaskInstanceHistoryCollection)))]
pub(crate) async fn list_mapped(
    State(state): State<AppState>,
    ApiPath((dag_id, run_id, task_id, map_index)): ApiPath<(String, String, String, i32)>,
) -> Result<Json<TaskInstanceHistoryCollection>, ApiError> {
    collection(&state, (dag_id, run_id, task_id), Some(map_index)).await
}

/// Every try of one task instance as a collection.
async fn collection(
    state: &AppState,
    path: (String, String, String),
    map_index: Option<i32>,
) -> Result<Json<TaskInstanceHistoryCollection>, ApiError> {
    let (_, task_instances) = load(state, path, map_index).await?;
    let total_entries = i64::try_from(task_instances.len()).unwrap_or(i64::MAX);
    Ok(Json(TaskInstanceHistoryCollection { task_instances, total_entries }))
}

/// `GET …/taskInstances/{task_id}/tries/{task_try_number}?map_index`
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/tries/{task_try_number}", operation_id = "get_task_instance_try_details", tag = "Task Instance", params(TaskInstancePath, ("task_try_number" = i32, Path, description = "The try, from 1"), TriesParams), responses((status = 200, body = TaskInstanceHistoryResponse)))]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    ApiPath((dag_id, run_id, task_id, try_number)): ApiPath<(String, String, String, i32)>,
    ApiQuery(params): ApiQuery<TriesParams>,
) -> Result<Json<TaskInstanceHistoryResponse>, ApiError> {
    one_try(&state, (dag_id, run_id, task_id), params.map_index, try_number).await
}

/// `GET …/taskInstances/{task_id}/{map_index}/tries/{task_try_number}`
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}/tries/{task_try_number}", operation_id = "get_mapped_task_instance_try_details", tag = "Task Instance", params(MappedTaskInstancePath, ("task_try_number" = i32, Path, description = "The try, from 1")), responses((status = 200, body = TaskInstanceHistoryResponse)))]
pub(crate) async fn get_one_mapped(
    State(state): State<AppState>,
    ApiPath((dag_id, run_id, task_id, map_index, try_number)): ApiPath<(String, String, String, i32, i32)>,
) -> Result<Json<TaskInstanceHistoryResponse>, ApiError> {
    one_try(&state, (dag_id, run_id, task_id), Some(map_index), try_number).await
}

/// One try of one task instance, or a 404 listing the tries it has.
async fn one_try(
    state: &AppState,
    path: (String, String, String),
    map_index: Option<i32>,
    try_number: i32,
) -> Result<Json<TaskInstanceHistoryResponse>, ApiError> {
    let (ti, tries) = load(state, path, map_index).await?;
    let numbers: Vec<String> = tries.iter().map(|t| t.try_number.to_string()).collect();
    match tries.into_iter().find(|t| t.try_number == try_number) {
        Some(found) => Ok(Json(found)),
        None => {
            let has = if numbers.is_empty() {
                "it has not run yet".into()
            } else {
                format!("its tries are {}", numbers.join(", "))
            };
            let mapped = if ti.map_index == -1 { String::new() } else { format!(" (map_index {})", ti.map_index) };
            Err(ApiError::NotFound(format!(
                "task instance `{}`{mapped} has no try {try_number} in DAG run `{}`; {has}",
                ti.task_id, ti.run_id
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use gust_shared::state::TaskState;
    use uuid::Uuid;

    use super::*;

    fn at(second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, second).unwrap()
    }

    fn ti(state: TaskState, try_number: i32) -> TaskInstanceRow {
        TaskInstanceRow {
            id: Uuid::nil(),
            run_pk: 1,
            dag_id: "etl".into(),
            run_id: "r1".into(),
            task_id: "extract".into(),
            map_index: -1,
            operator: "bash".into(),
            queue: "default".into(),
            state,
            try_number,
            max_tries: 2,
            hostname: Some("worker-2".into()),
            pid: Some(42),
            exit_code: None,
            failure_reason: None,
            next_retry_at: None,
            queued_at: Some(at(10)),
            start_date: Some(at(11)),
            end_date: None,
            updated_at: at(11),
            rendered_fields: None,
            pool: "default_pool".into(),
            pool_slots: 1,
            priority_weight: 1,
        }
    }

    fn finished(try_number: i32, state: TaskState) -> TryRow {
        TryRow {
            try_number,
            state,
            hostname: Some("worker-1".into()),
            exit_code: Some(3),
            failure_reason: Some("exit code 3".into()),
            queued_at: Some(at(0)),
            start_date: Some(at(1)),
            end_date: at(3),
        }
    }

    #[test]
    fn a_running_retry_follows_its_finished_tries() {
        let tries = all_tries(&ti(TaskState::Running, 2), vec![finished(1, TaskState::UpForRetry)]);
        let summary: Vec<_> = tries.iter().map(|t| (t.try_number, t.state)).collect();
        assert_eq!(summary, [(1, Some("up_for_retry")), (2, Some("running"))]);
        assert_eq!((tries[0].duration, tries[0].exit_code, tries[0].pid), (Some(2.0), Some(3), None));
        assert_eq!(tries[0].hostname.as_deref(), Some("worker-1"));
        assert_eq!((tries[1].hostname.as_deref(), tries[1].pid, tries[1].duration), (Some("worker-2"), Some(42), None));
    }

    #[test]
    fn a_finished_current_try_is_listed_once() {
        let tries = all_tries(&ti(TaskState::Failed, 1), vec![finished(1, TaskState::Failed)]);
        assert_eq!(tries.len(), 1);
        assert_eq!(tries[0].failure_reason.as_deref(), Some("exit code 3"));
    }

    #[test]
    fn a_task_that_never_started_has_no_tries() {
        assert!(all_tries(&ti(TaskState::None, 0), vec![]).is_empty());
    }
}
