//! `/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances`: the task
//! instances of a run.

use axum::{extract::State, Json};
use chrono::{DateTime, Utc};
use gust_shared::{
    db::{self, runs::DagRunRow, task_instances::TaskInstanceRow, GenericClient},
    state::TaskState,
};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::{
    dag_runs::{run_or_404, seconds_between},
    pagination::PageParams,
};
use crate::{
    error::ApiError,
    extract::{ApiPath, ApiQuery},
    AppState,
};

/// Airflow's `TaskInstanceResponse`, plus gust's `exit_code`, `failure_reason` and `next_retry_at`.
#[derive(Debug, Serialize)]
pub(crate) struct TaskInstanceResponse {
    id: Uuid,
    task_id: String,
    dag_id: String,
    dag_run_id: String,
    dag_display_name: String,
    task_display_name: String,
    map_index: i32,
    logical_date: Option<DateTime<Utc>>,
    run_after: DateTime<Utc>,
    start_date: Option<DateTime<Utc>>,
    end_date: Option<DateTime<Utc>>,
    duration: Option<f64>,
    state: Option<&'static str>,
    try_number: i32,
    max_tries: i32,
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
    note: Option<String>,
    rendered_map_index: Option<String>,
    rendered_fields: Value,
    trigger: Option<Value>,
    triggerer_job: Option<Value>,
    dag_version: Option<Value>,
    /// gust only: the exit code of the current try's process.
    exit_code: Option<i32>,
    /// gust only: why the current try failed (`exit code 3`, `timed out after 2s`).
    failure_reason: Option<String>,
    /// gust only: when the next try is due, while `up_for_retry`.
    next_retry_at: Option<DateTime<Utc>>,
}

/// Airflow's `TaskInstanceCollectionResponse`.
#[derive(Debug, Serialize)]
pub(crate) struct TaskInstanceCollection {
    task_instances: Vec<TaskInstanceResponse>,
    total_entries: i64,
}

impl TaskInstanceCollection {
    /// All of `tis`, task instances of `run`, as one page.
    pub(crate) fn of_run(tis: Vec<TaskInstanceRow>, run: &DagRunRow) -> Self {
        let total_entries = i64::try_from(tis.len()).unwrap_or(i64::MAX);
        Self { task_instances: tis.into_iter().map(|ti| TaskInstanceResponse::new(ti, run)).collect(), total_entries }
    }
}

impl TaskInstanceResponse {
    /// The API shape of a task instance of `run`.
    fn new(ti: TaskInstanceRow, run: &DagRunRow) -> Self {
        Self {
            id: ti.id,
            task_display_name: ti.task_id.clone(),
            dag_display_name: ti.dag_id.clone(),
            map_index: ti.map_index,
            logical_date: run.logical_date,
            run_after: run.run_after,
            duration: seconds_between(ti.start_date, ti.end_date),
            start_date: ti.start_date,
            end_date: ti.end_date,
            state: airflow_state(ti.state),
            try_number: ti.try_number,
            max_tries: ti.max_tries,
            hostname: ti.hostname,
            unixname: None,
            pool: ti.pool,
            pool_slots: ti.pool_slots,
            queue: Some(ti.queue),
            priority_weight: Some(ti.priority_weight),
            operator_name: Some(ti.operator.clone()),
            operator: Some(ti.operator),
            queued_when: ti.queued_at,
            scheduled_when: None,
            pid: ti.pid,
            executor: Some("gust"),
            executor_config: "{}",
            note: None,
            rendered_map_index: None,
            rendered_fields: ti.rendered_fields.unwrap_or_else(|| Value::Object(Default::default())),
            trigger: None,
            triggerer_job: None,
            dag_version: None,
            exit_code: ti.exit_code,
            failure_reason: ti.failure_reason,
            next_retry_at: ti.next_retry_at,
            task_id: ti.task_id,
            dag_run_id: ti.run_id,
            dag_id: ti.dag_id,
        }
    }
}

/// Airflow reports "no status yet" as `null`, every other state by its name.
pub(crate) fn airflow_state(state: TaskState) -> Option<&'static str> {
    match state {
        TaskState::None => None,
        other => Some(other.as_str()),
    }
}

/// Loads a task instance or answers 404 naming what is missing (DAG, run or task).
pub(crate) async fn ti_or_404(
    db: &impl GenericClient,
    dag_id: &str,
    run_id: &str,
    task_id: &str,
    map_index: i32,
) -> Result<TaskInstanceRow, ApiError> {
    if let Some(ti) = db::task_instances::get(db, dag_id, run_id, task_id, map_index).await? {
        return Ok(ti);
    }
    run_or_404(db, dag_id, run_id).await?;
    let mapped = if map_index == -1 { String::new() } else { format!(" (map_index {map_index})") };
    Err(ApiError::NotFound(format!(
        "task instance `{task_id}`{mapped} not found in DAG run `{run_id}` of DAG `{dag_id}`"
    )))
}

/// `GET …/dagRuns/{dag_run_id}/taskInstances`
pub(crate) async fn list(
    State(state): State<AppState>,
    ApiPath((dag_id, run_id)): ApiPath<(String, String)>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<TaskInstanceCollection>, ApiError> {
    let page = page.page()?;
    let db = state.db().await?;
    let run = run_or_404(&db, &dag_id, &run_id).await?;
    let all = db::task_instances::list_for_run(&db, run.id).await?;
    let total_entries = i64::try_from(all.len()).unwrap_or(i64::MAX);
    let task_instances = page.slice(all).into_iter().map(|ti| TaskInstanceResponse::new(ti, &run)).collect();
    Ok(Json(TaskInstanceCollection { task_instances, total_entries }))
}

/// `GET …/dagRuns/{dag_run_id}/taskInstances/{task_id}`
pub(crate) async fn get_one(
    State(state): State<AppState>,
    ApiPath((dag_id, run_id, task_id)): ApiPath<(String, String, String)>,
) -> Result<Json<TaskInstanceResponse>, ApiError> {
    let db = state.db().await?;
    let run = run_or_404(&db, &dag_id, &run_id).await?;
    let ti = ti_or_404(&db, &dag_id, &run_id, &task_id, -1).await?;
    Ok(Json(TaskInstanceResponse::new(ti, &run)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_status_is_null_and_other_states_keep_airflows_names() {
        assert_eq!(airflow_state(TaskState::None), None);
        assert_eq!(airflow_state(TaskState::UpForRetry), Some("up_for_retry"));
        assert_eq!(airflow_state(TaskState::UpstreamFailed), Some("upstream_failed"));
    }
}
