//! `POST /api/v2/dags/~/dagRuns/~/taskInstances/list` (Airflow's
//! `get_task_instances_batch`): the task instance list's filters in a JSON
//! body, for lists of DAGs, runs and tasks too long for a query string. A
//! read, so a viewer may ask; a DAG or run named in the path instead of `~`
//! narrows the list further.

use axum::{extract::State, Json};
use chrono::{DateTime, Utc};
use gust_shared::db::{
    filters::TimeRange,
    task_instances::listing::{self, DurationRange, TaskInstanceFilter, ORDER_FIELDS, ORDER_TIEBREAK},
};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{
    input_checks::at_least_zero,
    pagination::MAX_LIMIT,
    path_params::RunPath,
    task_instances::{
        mask_rendered_secrets, state_filter, task_state_names, TaskInstanceCollection, TaskInstanceResponse,
    },
};
use crate::{
    error::ApiError,
    extract::{ApiJson, ApiPath},
    AppState,
};

/// The path segment Airflow uses for "every DAG" and "every run".
const ALL: &str = "~";

/// The fields Airflow lets a batch listing be ordered by.
const BATCH_ORDER_FIELDS: [&str; 6] = ["id", "state", "duration", "start_date", "end_date", "map_index"];

/// The executor every gust task instance reports.
const EXECUTOR: &str = "gust";

/// Airflow's `TaskInstancesBatchBody`: every field optional; lists match any of their values.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TaskInstancesBatchBody {
    dag_ids: Option<Vec<String>>,
    dag_run_ids: Option<Vec<String>>,
    task_ids: Option<Vec<String>>,
    /// States; `null` (or `none`, `no_status`) for "no status yet".
    #[schema(schema_with = states_schema)]
    state: Option<Vec<Option<String>>>,
    run_after_gte: Option<DateTime<Utc>>,
    run_after_gt: Option<DateTime<Utc>>,
    run_after_lte: Option<DateTime<Utc>>,
    run_after_lt: Option<DateTime<Utc>>,
    logical_date_gte: Option<DateTime<Utc>>,
    logical_date_gt: Option<DateTime<Utc>>,
    logical_date_lte: Option<DateTime<Utc>>,
    logical_date_lt: Option<DateTime<Utc>>,
    start_date_gte: Option<DateTime<Utc>>,
    start_date_gt: Option<DateTime<Utc>>,
    start_date_lte: Option<DateTime<Utc>>,
    start_date_lt: Option<DateTime<Utc>>,
    end_date_gte: Option<DateTime<Utc>>,
    end_date_gt: Option<DateTime<Utc>>,
    end_date_lte: Option<DateTime<Utc>>,
    end_date_lt: Option<DateTime<Utc>>,
    duration_gte: Option<f64>,
    duration_gt: Option<f64>,
    duration_lte: Option<f64>,
    duration_lt: Option<f64>,
    pool: Option<Vec<String>>,
    queue: Option<Vec<String>>,
    /// Executors; gust's task instances all report `gust`.
    executor: Option<Vec<String>>,
    /// Rows to skip (default 0).
    #[schema(minimum = 0)]
    page_offset: Option<i64>,
    /// Rows to return (default 100, at most 1000).
    #[schema(minimum = 0)]
    page_limit: Option<i64>,
    /// One of `id`, `state`, `duration`, `start_date`, `end_date`, `map_index`; `-` first for descending.
    #[schema(pattern = "^(-?(id|state|duration|start_date|end_date|map_index))?$")]
    order_by: Option<String>,
}

/// The schema of `state`: a list of task-instance states (as the `state` filter takes them) or nulls, or null.
fn states_schema() -> utoipa::openapi::schema::Schema {
    crate::openapi::nullable_list_of(task_state_names())
}

/// `POST …/dagRuns/{dag_run_id}/taskInstances/list`
#[utoipa::path(post, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/list", operation_id = "get_task_instances_batch", tag = "Task Instance", params(RunPath), request_body = TaskInstancesBatchBody, responses((status = 200, body = TaskInstanceCollection)))]
pub(crate) async fn list_batch(
    State(state): State<AppState>,
    ApiPath((dag_id, run_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<TaskInstancesBatchBody>,
) -> Result<Json<TaskInstanceCollection>, ApiError> {
    let (limit, offset) = page_of(&body)?;
    let order_by = order_of(body.order_by.as_deref())?;
    let mut filter = filter_of(body)?;
    let Some(filter) = filter.as_mut() else {
        return Ok(Json(TaskInstanceCollection::of_page(Vec::new(), 0)));
    };
    if dag_id != ALL {
        filter.dag_id = Some(dag_id);
    }
    if run_id != ALL {
        filter.run_id = Some(run_id);
    }
    let db = state.db().await?;
    let (listed, total_entries) = listing::list_filtered(&db, filter, &order_by, limit, offset).await?;
    let mut task_instances: Vec<TaskInstanceResponse> = listed.into_iter().map(TaskInstanceResponse::listed).collect();
    mask_rendered_secrets(&db, state.secrets.as_deref(), &mut task_instances).await?;
    Ok(Json(TaskInstanceCollection::of_page(task_instances, total_entries)))
}

/// `page_limit` (default 100, capped at 1000) and `page_offset`; negative ones are a 422.
fn page_of(body: &TaskInstancesBatchBody) -> Result<(i64, i64), ApiError> {
    let limit = body.page_limit.unwrap_or(100);
    let offset = body.page_offset.unwrap_or(0);
    for (name, value) in [("page_limit", limit), ("page_offset", offset)] {
        if value < 0 {
            return Err(at_least_zero(["body", name], value));
        }
    }
    Ok((limit.min(MAX_LIMIT), offset))
}

/// The SQL order of `order_by`, from the fields Airflow allows here.
fn order_of(order_by: Option<&str>) -> Result<String, ApiError> {
    let Some(field) = order_by.map(str::trim).filter(|f| !f.is_empty()) else {
        return Ok(format!("ti.map_index ASC, {ORDER_TIEBREAK}"));
    };
    let (name, direction) = match field.strip_prefix('-') {
        Some(name) => (name, "DESC"),
        None => (field, "ASC"),
    };
    let column = ORDER_FIELDS
        .iter()
        .find(|(field, _)| *field == name && BATCH_ORDER_FIELDS.contains(field))
        .map(|(_, column)| *column)
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "cannot order by `{name}`; `order_by` takes one of {} (prefix `-` for descending)",
                BATCH_ORDER_FIELDS.join(", ")
            ))
        })?;
    Ok(format!("{column} {direction}, {ORDER_TIEBREAK}"))
}

/// The listing filter the body asks for, or `None` when it can match nothing
/// (an executor list without gust's).
fn filter_of(body: TaskInstancesBatchBody) -> Result<Option<TaskInstanceFilter>, ApiError> {
    if body.executor.as_ref().is_some_and(|executors| !executors.is_empty() && !executors.iter().any(|e| e == EXECUTOR))
    {
        return Ok(None);
    }
    let states = body
        .state
        .unwrap_or_default()
        .into_iter()
        .map(|state| state_filter("body", state.as_deref().unwrap_or("none")))
        .collect::<Result<_, _>>()?;
    for (name, value) in [
        ("duration_gte", body.duration_gte),
        ("duration_gt", body.duration_gt),
        ("duration_lte", body.duration_lte),
        ("duration_lt", body.duration_lt),
    ] {
        if value.is_some_and(|seconds| !seconds.is_finite()) {
            return Err(ApiError::BadRequest(format!("`{name}` must be a finite number of seconds")));
        }
    }
    Ok(Some(TaskInstanceFilter {
        dag_ids: body.dag_ids.unwrap_or_default(),
        run_ids: body.dag_run_ids.unwrap_or_default(),
        task_ids: body.task_ids.unwrap_or_default(),
        states,
        pools: body.pool.unwrap_or_default(),
        queues: body.queue.unwrap_or_default(),
        run_after: TimeRange {
            gte: body.run_after_gte,
            gt: body.run_after_gt,
            lte: body.run_after_lte,
            lt: body.run_after_lt,
        },
        logical_date: TimeRange {
            gte: body.logical_date_gte,
            gt: body.logical_date_gt,
            lte: body.logical_date_lte,
            lt: body.logical_date_lt,
        },
        start_date: TimeRange {
            gte: body.start_date_gte,
            gt: body.start_date_gt,
            lte: body.start_date_lte,
            lt: body.start_date_lt,
        },
        end_date: TimeRange {
            gte: body.end_date_gte,
            gt: body.end_date_gt,
            lte: body.end_date_lte,
            lt: body.end_date_lt,
        },
        duration: DurationRange {
            gte: body.duration_gte,
            gt: body.duration_gt,
            lte: body.duration_lte,
            lt: body.duration_lt,
        },
        ..TaskInstanceFilter::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_by_takes_airflows_batch_fields_only() {
        assert!(order_of(Some("-start_date")).unwrap().starts_with("ti.start_date DESC"));
        assert!(order_of(None).unwrap().starts_with("ti.map_index ASC"));
        let error = order_of(Some("pool")).unwrap_err().to_string();
        assert!(error.contains("`pool`") && error.contains("map_index"), "{error}");
    }

    #[test]
    fn null_states_mean_no_status_and_a_foreign_executor_matches_nothing() {
        let body: TaskInstancesBatchBody =
            serde_json::from_value(serde_json::json!({"state": [null, "success"], "executor": ["gust"]})).unwrap();
        assert_eq!(filter_of(body).unwrap().unwrap().states, ["none", "success"]);
        let celery: TaskInstancesBatchBody =
            serde_json::from_value(serde_json::json!({"executor": ["CeleryExecutor"]})).unwrap();
        assert!(filter_of(celery).unwrap().is_none());
    }

    #[test]
    fn unknown_fields_and_negative_pages_are_refused() {
        assert!(serde_json::from_value::<TaskInstancesBatchBody>(serde_json::json!({"dag_id": ["x"]})).is_err());
        let body = TaskInstancesBatchBody { page_limit: Some(-1), ..Default::default() };
        assert!(page_of(&body).unwrap_err().to_string().contains("`page_limit`"));
    }
}
