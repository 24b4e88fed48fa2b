//! `/api/v2/dags/{dag_id}/tasks`: the tasks of a DAG's current definition, in Airflow's `TaskResponse` shape.

use std::collections::HashMap;

use axum::{extract::State, Json};
use chrono::{DateTime, Utc};
use gust_shared::dag::{Dag, TaskSpec};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::{dag_details::params_of, dags::dag_not_found, path_params::DagPath};
use crate::{
    error::ApiError,
    extract::{ApiPath, ApiQuery},
    AppState,
};

/// Airflow's `TimeDelta`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct TimeDelta {
    #[serde(rename = "__type")]
    kind: &'static str,
    days: i64,
    seconds: i64,
    microseconds: i64,
}

impl TimeDelta {
    /// The span of `ms` milliseconds, as Python's `timedelta` splits it.
    fn from_ms(ms: u64) -> Self {
        let ms = i64::try_from(ms).unwrap_or(i64::MAX);
        Self {
            kind: "TimeDelta",
            days: ms / 86_400_000,
            seconds: ms % 86_400_000 / 1000,
            microseconds: ms % 1000 * 1000,
        }
    }
}

/// Airflow's `TaskResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TaskResponse {
    task_id: String,
    task_display_name: String,
    owner: Option<String>,
    start_date: Option<DateTime<Utc>>,
    end_date: Option<DateTime<Utc>>,
    trigger_rule: &'static str,
    depends_on_past: bool,
    wait_for_downstream: bool,
    retries: f64,
    queue: String,
    pool: String,
    pool_slots: f64,
    execution_timeout: Option<TimeDelta>,
    retry_delay: Option<TimeDelta>,
    /// The factor each retry's wait grows by: 2 with `retry_exponential_backoff: true`, else 0.
    retry_exponential_backoff: f64,
    priority_weight: f64,
    weight_rule: &'static str,
    ui_color: &'static str,
    ui_fgcolor: &'static str,
    template_fields: Option<Vec<String>>,
    downstream_task_ids: Vec<String>,
    doc_md: Option<String>,
    operator_name: String,
    #[schema(value_type = Option<Object>)]
    params: Option<Map<String, Value>>,
    #[schema(value_type = Option<Object>)]
    class_ref: Option<Value>,
    is_mapped: bool,
    extra_links: Vec<String>,
}

/// Airflow's `TaskCollectionResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TaskCollection {
    tasks: Vec<TaskResponse>,
    total_entries: i64,
}

/// The query of `GET …/tasks`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TaskOrder {
    /// The field to sort by (`task_id`, the default, `task_display_name`, `operator_name`, `queue`,
    /// `pool`, `priority_weight`, `retries` or `trigger_rule`); `-field` sorts descending.
    #[param(
        pattern = "^(-?(task_id|task_display_name|operator_name|queue|pool|priority_weight|retries|trigger_rule))?$"
    )]
    order_by: Option<String>,
}

/// `{dag_id}/tasks/{task_id}`: one task of a DAG.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // never constructed: it exists for its `IntoParams` impl
pub(crate) struct TaskPath {
    /// The DAG's id.
    dag_id: String,
    /// The task's id.
    task_id: String,
}

/// The fields `order_by` may name.
const ORDER_FIELDS: [&str; 8] =
    ["task_id", "task_display_name", "operator_name", "queue", "pool", "priority_weight", "retries", "trigger_rule"];

/// The tasks of `dag`, each with its downstream tasks.
fn task_responses(dag: &Dag) -> Vec<TaskResponse> {
    let mut downstream: HashMap<&str, Vec<String>> = HashMap::new();
    for task in &dag.tasks {
        for parent in &task.upstream {
            downstream.entry(parent.as_str()).or_default().push(task.task_id.clone());
        }
    }
    let params = params_of(dag);
    dag.tasks
        .iter()
        .map(|task| task_response(dag, task, downstream.remove(task.task_id.as_str()).unwrap_or_default(), &params))
        .collect()
}

fn task_response(dag: &Dag, task: &TaskSpec, mut downstream: Vec<String>, params: &Map<String, Value>) -> TaskResponse {
    downstream.sort();
    TaskResponse {
        task_display_name: task.task_id.clone(),
        task_id: task.task_id.clone(),
        owner: dag.owners.first().cloned(),
        start_date: Some(dag.start_date),
        end_date: dag.end_date,
        trigger_rule: task.trigger_rule.as_str(),
        depends_on_past: false,
        wait_for_downstream: false,
        retries: f64::from(task.retries),
        queue: task.queue.clone(),
        pool: task.pool.clone(),
        pool_slots: f64::from(task.pool_slots),
        execution_timeout: task.execution_timeout_ms.map(TimeDelta::from_ms),
        retry_delay: Some(TimeDelta::from_ms(task.retry_delay_ms)),
        retry_exponential_backoff: if task.retry_exponential_backoff { 2.0 } else { 0.0 },
        priority_weight: f64::from(task.priority_weight),
        weight_rule: "absolute",
        ui_color: "#fff",
        ui_fgcolor: "#000",
        template_fields: None,
        downstream_task_ids: downstream,
        doc_md: None,
        operator_name: task.operator.name().to_string(),
        params: Some(params.clone()),
        class_ref: None,
        is_mapped: task.expand.is_some(),
        extra_links: Vec::new(),
    }
}

/// Sorts `tasks` by `order_by` (one of [`ORDER_FIELDS`], `-` for descending), task id breaking ties.
fn sort(tasks: &mut [TaskResponse], order_by: Option<&str>) -> Result<(), ApiError> {
    let order_by = order_by.filter(|o| !o.is_empty()).unwrap_or("task_id");
    let (field, descending) = match order_by.strip_prefix('-') {
        Some(field) => (field, true),
        None => (order_by, false),
    };
    if !ORDER_FIELDS.contains(&field) {
        return Err(ApiError::BadRequest(format!(
            "cannot order tasks by `{field}`; `order_by` takes one of {} (prefix `-` for descending)",
            ORDER_FIELDS.join(", ")
        )));
    }
    tasks.sort_by(|a, b| {
        let ordering = match field {
            "operator_name" => a.operator_name.cmp(&b.operator_name),
            "queue" => a.queue.cmp(&b.queue),
            "pool" => a.pool.cmp(&b.pool),
            "priority_weight" => a.priority_weight.total_cmp(&b.priority_weight),
            "retries" => a.retries.total_cmp(&b.retries),
            "trigger_rule" => a.trigger_rule.cmp(b.trigger_rule),
            _ => a.task_id.cmp(&b.task_id),
        };
        let ordering = ordering.then_with(|| a.task_id.cmp(&b.task_id));
        if descending {
            ordering.reverse()
        } else {
            ordering
        }
    });
    Ok(())
}

/// The current definition of DAG `dag_id`, or its 404.
async fn definition_or_404(state: &AppState, dag_id: &str) -> Result<Dag, ApiError> {
    let db = state.db().await?;
    gust_shared::db::dags::definition(&db, dag_id).await?.ok_or_else(|| dag_not_found(dag_id))
}

/// `GET /api/v2/dags/{dag_id}/tasks`: every task of the DAG's current definition.
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/tasks", operation_id = "get_tasks", tag = "Task", params(DagPath, TaskOrder), responses((status = 200, body = TaskCollection)))]
pub(crate) async fn get_tasks(
    State(state): State<AppState>,
    ApiPath(dag_id): ApiPath<String>,
    ApiQuery(order): ApiQuery<TaskOrder>,
) -> Result<Json<TaskCollection>, ApiError> {
    let dag = definition_or_404(&state, &dag_id).await?;
    let mut tasks = task_responses(&dag);
    sort(&mut tasks, order.order_by.as_deref())?;
    let total_entries = i64::try_from(tasks.len()).unwrap_or(i64::MAX);
    Ok(Json(TaskCollection { tasks, total_entries }))
}

/// `GET /api/v2/dags/{dag_id}/tasks/{task_id}`
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/tasks/{task_id}", operation_id = "get_task", tag = "Task", params(TaskPath), responses((status = 200, body = TaskResponse)))]
pub(crate) async fn get_task(
    State(state): State<AppState>,
    ApiPath((dag_id, task_id)): ApiPath<(String, String)>,
) -> Result<Json<TaskResponse>, ApiError> {
    let dag = definition_or_404(&state, &dag_id).await?;
    task_responses(&dag).into_iter().find(|task| task.task_id == task_id).map(Json).ok_or_else(|| {
        ApiError::NotFound(format!(
            "task `{task_id}` not found in DAG `{dag_id}`; GET /api/v2/dags/{dag_id}/tasks lists its tasks"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_splits_into_days_seconds_and_microseconds() {
        let span = TimeDelta::from_ms(86_400_000 + 61_500);
        assert_eq!((span.days, span.seconds, span.microseconds), (1, 61, 500_000));
    }

    #[test]
    fn ordering_by_an_unknown_field_names_the_allowed_ones() {
        let error = sort(&mut [], Some("-color")).unwrap_err().to_string();
        assert!(error.contains("`color`") && error.contains("operator_name"), "{error}");
    }
}
