//! `/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances`: the task
//! instances of a run, or with `~` for the run (or for both) of every run of
//! a DAG (or of every DAG), filtered and ordered as Airflow's
//! `get_task_instances`.

use axum::{extract::State, Json};
use chrono::{DateTime, Utc};
use gust_shared::{
    db::{
        runs::DagRunRow,
        task_instances::{
            listing::{
                self, DurationRange, ListedTaskInstance, TaskInstanceFilter, TaskInstanceRow, DEFAULT_ORDER,
                ORDER_FIELDS, ORDER_TIEBREAK,
            },
            removal,
        },
        GenericClient,
    },
    state::{TaskState, ALL_TASK_STATES},
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    dag_runs::{definition_of, run_or_404, seconds_between},
    dags::dag_or_404,
    list_query::{string_choice, Filters, QueryPairs},
    pagination::{order_by_param, OrderParams, PageParams},
    path_params::{MappedTaskInstancePath, RunPath, TaskInstancePath},
};
use crate::{
    error::ApiError,
    extract::{ApiPath, ApiQuery},
    AppState,
};

/// Airflow's `TaskInstanceResponse`, plus gust's `exit_code`, `failure_reason` and `next_retry_at`.
#[derive(Debug, Serialize, ToSchema)]
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
    /// gust only: when the next try (`up_for_retry`) or sensor poke (`up_for_reschedule`) is due.
    next_retry_at: Option<DateTime<Utc>>,
}

/// Airflow's `TaskInstanceCollectionResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TaskInstanceCollection {
    task_instances: Vec<TaskInstanceResponse>,
    total_entries: i64,
}

impl TaskInstanceCollection {
    /// One page of task instances and how many match in all.
    pub(crate) fn of_page(task_instances: Vec<TaskInstanceResponse>, total_entries: i64) -> Self {
        Self { task_instances, total_entries }
    }

    /// All of `tis`, task instances of `run`, as one page.
    pub(crate) fn of_run(tis: Vec<TaskInstanceRow>, run: &DagRunRow) -> Self {
        let total_entries = i64::try_from(tis.len()).unwrap_or(i64::MAX);
        Self { task_instances: tis.into_iter().map(|ti| TaskInstanceResponse::new(ti, run)).collect(), total_entries }
    }
}

impl TaskInstanceResponse {
    /// The API shape of a task instance of `run`.
    fn new(ti: TaskInstanceRow, run: &DagRunRow) -> Self {
        Self::with_run_dates(ti, run.logical_date, run.run_after)
    }

    /// The API shape of a task instance listed with its run's dates.
    pub(crate) fn listed(row: ListedTaskInstance) -> Self {
        Self::with_run_dates(row.ti, row.logical_date, row.run_after)
    }

    /// The API shape of a task instance whose run has this logical date and `run_after`.
    fn with_run_dates(ti: TaskInstanceRow, logical_date: Option<DateTime<Utc>>, run_after: DateTime<Utc>) -> Self {
        Self {
            id: ti.id,
            task_display_name: ti.task_id.clone(),
            dag_display_name: ti.dag_id.clone(),
            map_index: ti.map_index,
            logical_date,
            run_after,
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
            rendered_map_index: (ti.map_index >= 0).then(|| ti.map_index.to_string()),
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
    if let Some(ti) = listing::get(db, dag_id, run_id, task_id, map_index).await? {
        return Ok(ti);
    }
    run_or_404(db, dag_id, run_id).await?;
    let mapped = if map_index == -1 { String::new() } else { format!(" (map_index {map_index})") };
    Err(ApiError::NotFound(format!(
        "task instance `{task_id}`{mapped} not found in DAG run `{run_id}` of DAG `{dag_id}`"
    )))
}

/// The path segment Airflow uses for "every DAG" and "every run".
const ALL: &str = "~";

/// Task states Airflow has and gust never uses: accepted as filters, they match nothing.
const AIRFLOW_ONLY_STATES: [&str; 3] = ["restarting", "up_for_reschedule", "deferred"];

/// Airflow `get_task_instances` parameters gust cannot apply: refused by name
/// rather than ignored (`cursor` only when not empty, Airflow's "first page").
const UNSUPPORTED_FILTERS: [&str; 6] = [
    "cursor",
    "executor",
    "version_number",
    "task_group_id",
    "rendered_map_index_pattern",
    "rendered_map_index_prefix_pattern",
];

/// `duration_gte` … `duration_lt` in seconds.
fn duration_range(query: &QueryPairs) -> Result<DurationRange, ApiError> {
    let bound = |suffix: &str| {
        let key = format!("duration_{suffix}");
        query.last(&key).map(|value| parse_seconds(&key, value)).transpose()
    };
    Ok(DurationRange { gte: bound("gte")?, gt: bound("gt")?, lte: bound("lte")?, lt: bound("lt")? })
}

/// The filters of `GET …/taskInstances`, for the OpenAPI document only: the
/// handler reads them from the raw query ([`filter_of`]) so that every bad
/// value is an error naming its parameter. Lists are repeated keys.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // never constructed: it exists for its `IntoParams` impl
pub(crate) struct TaskInstanceFilters {
    /// Only this task.
    task_id: Option<String>,
    /// Any of these states; `none` or `no_status` for "no status yet".
    #[param(inline)]
    state: Vec<TaskStateName>,
    /// Any of these pools.
    pool: Vec<String>,
    /// Any of these queues.
    queue: Vec<String>,
    /// Any of these operators.
    operator: Vec<String>,
    /// Any of these map indexes (-1 when not mapped).
    map_index: Vec<i32>,
    /// Any of these try numbers.
    try_number: Vec<i32>,
    /// The run's logical date is at or after this.
    logical_date_gte: Option<DateTime<Utc>>,
    /// The run's logical date is after this.
    logical_date_gt: Option<DateTime<Utc>>,
    /// The run's logical date is at or before this.
    logical_date_lte: Option<DateTime<Utc>>,
    /// The run's logical date is before this.
    logical_date_lt: Option<DateTime<Utc>>,
    /// The run's `run_after` is at or after this.
    run_after_gte: Option<DateTime<Utc>>,
    /// The run's `run_after` is after this.
    run_after_gt: Option<DateTime<Utc>>,
    /// The run's `run_after` is at or before this.
    run_after_lte: Option<DateTime<Utc>>,
    /// The run's `run_after` is before this.
    run_after_lt: Option<DateTime<Utc>>,
    /// Started at or after this.
    start_date_gte: Option<DateTime<Utc>>,
    /// Started after this.
    start_date_gt: Option<DateTime<Utc>>,
    /// Started at or before this.
    start_date_lte: Option<DateTime<Utc>>,
    /// Started before this.
    start_date_lt: Option<DateTime<Utc>>,
    /// Ended at or after this.
    end_date_gte: Option<DateTime<Utc>>,
    /// Ended after this.
    end_date_gt: Option<DateTime<Utc>>,
    /// Ended at or before this.
    end_date_lte: Option<DateTime<Utc>>,
    /// Ended before this.
    end_date_lt: Option<DateTime<Utc>>,
    /// Last changed at or after this.
    updated_at_gte: Option<DateTime<Utc>>,
    /// Last changed after this.
    updated_at_gt: Option<DateTime<Utc>>,
    /// Last changed at or before this.
    updated_at_lte: Option<DateTime<Utc>>,
    /// Last changed before this.
    updated_at_lt: Option<DateTime<Utc>>,
    /// Ran at least this many seconds (unfinished ones never match a duration filter).
    duration_gte: Option<f64>,
    /// Ran more than this many seconds.
    duration_gt: Option<f64>,
    /// Ran at most this many seconds.
    duration_lte: Option<f64>,
    /// Ran less than this many seconds.
    duration_lt: Option<f64>,
    /// DAG id contains this text, any case; `|` between alternatives.
    dag_id_pattern: Option<String>,
    /// DAG id starts with this text; `|` between alternatives.
    dag_id_prefix_pattern: Option<String>,
    /// Run id contains this text, any case; `|` between alternatives.
    run_id_pattern: Option<String>,
    /// Run id starts with this text; `|` between alternatives.
    run_id_prefix_pattern: Option<String>,
    /// Task id contains this text, any case; `|` between alternatives.
    task_display_name_pattern: Option<String>,
    /// Task id starts with this text; `|` between alternatives.
    task_display_name_prefix_pattern: Option<String>,
    /// Pool contains this text, any case; `|` between alternatives.
    pool_name_pattern: Option<String>,
    /// Pool starts with this text; `|` between alternatives.
    pool_name_prefix_pattern: Option<String>,
    /// Queue contains this text, any case; `|` between alternatives.
    queue_name_pattern: Option<String>,
    /// Queue starts with this text; `|` between alternatives.
    queue_name_prefix_pattern: Option<String>,
    /// Operator contains this text, any case; `|` between alternatives.
    operator_name_pattern: Option<String>,
    /// Operator starts with this text; `|` between alternatives.
    operator_name_prefix_pattern: Option<String>,
}

/// The filters of Airflow's `get_task_instances` that gust supports, checked;
/// an empty value counts as not given.
fn filter_of(query: &QueryPairs) -> Result<TaskInstanceFilter, ApiError> {
    query.refuse(&UNSUPPORTED_FILTERS)?;
    Ok(TaskInstanceFilter {
        task_id: query.last("task_id").map(str::to_string),
        states: query.all("state").map(|value| state_filter("query", value)).collect::<Result<_, _>>()?,
        pools: query.strings("pool"),
        queues: query.strings("queue"),
        operators: query.strings("operator"),
        map_indexes: query.integers("map_index")?,
        try_numbers: query.integers("try_number")?,
        logical_date: query.time_range("logical_date")?,
        run_after: query.time_range("run_after")?,
        start_date: query.time_range("start_date")?,
        end_date: query.time_range("end_date")?,
        updated_at: query.time_range("updated_at")?,
        duration: duration_range(query)?,
        dag_id_matches: query.text_matches("dag_id"),
        run_id_matches: query.text_matches("run_id"),
        task_id_matches: query.text_matches("task_display_name"),
        pool_matches: query.text_matches("pool_name"),
        queue_matches: query.text_matches("queue_name"),
        operator_matches: query.text_matches("operator_name"),
        ..TaskInstanceFilter::default()
    })
}

string_choice!(TaskStateName, task_state_names());

/// Every name the `state` filter takes: the stored states, `no_status`, and Airflow's states gust never sets.
pub(crate) fn task_state_names() -> impl Iterator<Item = &'static str> {
    ALL_TASK_STATES.iter().map(|s| s.as_str()).chain(["no_status"]).chain(AIRFLOW_ONLY_STATES)
}

/// A `state` filter value as stored: Airflow's names, with `none` and
/// `no_status` for "no status yet"; an unknown name is a 422 at `place` (`query` or
/// `body`) listing the known ones, as Airflow answers it.
pub(crate) fn state_filter(place: &str, value: &str) -> Result<String, ApiError> {
    if value == "no_status" {
        return Ok(TaskState::None.as_str().to_string());
    }
    if TaskState::parse(value).is_some() || AIRFLOW_ONLY_STATES.contains(&value) {
        return Ok(value.to_string());
    }
    let known: Vec<&str> = task_state_names().collect();
    Err(ApiError::invalid(
        [place, "state"],
        "enum",
        format!("`state` has an unknown value `{value}`; use one of {}", known.join(", ")),
    ))
}

/// A finite number of seconds; anything else is a 400 naming `param`.
fn parse_seconds(param: &str, value: &str) -> Result<f64, ApiError> {
    value.trim().parse::<f64>().ok().filter(|seconds| seconds.is_finite()).ok_or_else(|| {
        ApiError::invalid(
            ["query", param],
            "float_parsing",
            format!("`{param}` must be a number of seconds, got `{value}`"),
        )
    })
}

order_by_param!(TaskInstanceOrder, ORDER_FIELDS);

/// `GET /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances`: `~` for
/// the run lists every run of the DAG, `~` for both every DAG's. A DAG or run
/// that is named must exist (404 otherwise).
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances", operation_id = "get_task_instances", tag = "Task Instance", params(RunPath, PageParams, TaskInstanceOrder, Filters<TaskInstanceFilters>), responses((status = 200, body = TaskInstanceCollection)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    ApiPath((dag_id, run_id)): ApiPath<(String, String)>,
    ApiQuery(page): ApiQuery<PageParams>,
    ApiQuery(order): ApiQuery<OrderParams>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> Result<Json<TaskInstanceCollection>, ApiError> {
    let page = page.page()?;
    let order_by = order.sql(ORDER_FIELDS, DEFAULT_ORDER, ORDER_TIEBREAK)?;
    let mut filter = filter_of(&QueryPairs(pairs))?;
    let db = state.db().await?;
    match (dag_id == ALL, run_id == ALL) {
        (false, false) => filter.run_pk = Some(run_or_404(&db, &dag_id, &run_id).await?.id),
        (false, true) => {
            dag_or_404(&db, &dag_id).await?;
            filter.dag_id = Some(dag_id);
        }
        (true, false) => {
            if !listing::any_run_with_id(&db, &run_id).await? {
                return Err(ApiError::NotFound(format!("no DAG has a run `{run_id}`")));
            }
            filter.run_id = Some(run_id);
        }
        (true, true) => {}
    }
    let (listed, total_entries) = listing::list_filtered(&db, &filter, &order_by, page.limit, page.offset).await?;
    let mut task_instances: Vec<TaskInstanceResponse> = listed.into_iter().map(TaskInstanceResponse::listed).collect();
    mask_rendered_secrets(&db, state.secrets.as_deref(), &mut task_instances).await?;
    Ok(Json(TaskInstanceCollection { task_instances, total_entries }))
}

/// `GET …/dagRuns/{dag_run_id}/taskInstances/{task_id}`: the task instance of an unmapped task (map index -1).
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}", operation_id = "get_task_instance", tag = "Task Instance", params(TaskInstancePath), responses((status = 200, body = TaskInstanceResponse)))]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    ApiPath((dag_id, run_id, task_id)): ApiPath<(String, String, String)>,
) -> Result<Json<TaskInstanceResponse>, ApiError> {
    one(&state, &dag_id, &run_id, &task_id, -1).await
}

/// `GET …/taskInstances/{task_id}/{map_index}`: one instance of a mapped task (or -1 for an unmapped one).
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}", operation_id = "get_mapped_task_instance", tag = "Task Instance", params(MappedTaskInstancePath), responses((status = 200, body = TaskInstanceResponse)))]
pub(crate) async fn get_mapped(
    State(state): State<AppState>,
    ApiPath((dag_id, run_id, task_id, map_index)): ApiPath<(String, String, String, i32)>,
) -> Result<Json<TaskInstanceResponse>, ApiError> {
    one(&state, &dag_id, &run_id, &task_id, map_index).await
}

/// One task instance with its rendered secrets masked, or a 404 naming what is missing.
async fn one(
    state: &AppState,
    dag_id: &str,
    run_id: &str,
    task_id: &str,
    map_index: i32,
) -> Result<Json<TaskInstanceResponse>, ApiError> {
    let db = state.db().await?;
    let run = run_or_404(&db, dag_id, run_id).await?;
    let found = ti_or_404(&db, dag_id, run_id, task_id, map_index).await;
    if matches!(found, Err(ApiError::NotFound(_))) && map_index == -1 && is_mapped(&db, &run, task_id).await? {
        return Err(ApiError::NotFound(format!(
            "task `{task_id}` is mapped: add the map index to the path \
             (…/taskInstances/{task_id}/{{map_index}}) or list them with …/taskInstances/{task_id}/listMapped"
        )));
    }
    let ti = found?;
    let mut response = [TaskInstanceResponse::new(ti, &run)];
    mask_rendered_secrets(&db, state.secrets.as_deref(), &mut response).await?;
    let [response] = response;
    Ok(Json(response))
}

/// Whether `task_id` has expanded instances (map index 0 and up) in `run`.
async fn is_mapped(db: &impl GenericClient, run: &DagRunRow, task_id: &str) -> Result<bool, ApiError> {
    Ok(listing::list_for_task(db, run.id, task_id).await?.iter().any(|ti| ti.map_index >= 0))
}

/// The order of `listMapped` when none is asked for (Airflow's: by map index).
const MAPPED_DEFAULT_ORDER: &str = "ti.map_index ASC";

/// `GET …/taskInstances/{task_id}/listMapped`: the expanded instances of a
/// mapped task, with the filters, order and paging of the task instance list.
/// A task that is not in the run's DAG, or not mapped, is a 404; a mapped task
/// that expanded to nothing (or not yet) lists nothing.
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/listMapped", operation_id = "get_mapped_task_instances", tag = "Task Instance", params(TaskInstancePath, PageParams, TaskInstanceOrder, Filters<TaskInstanceFilters>), responses((status = 200, body = TaskInstanceCollection)))]
pub(crate) async fn list_mapped(
    State(state): State<AppState>,
    ApiPath((dag_id, run_id, task_id)): ApiPath<(String, String, String)>,
    ApiQuery(page): ApiQuery<PageParams>,
    ApiQuery(order): ApiQuery<OrderParams>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> Result<Json<TaskInstanceCollection>, ApiError> {
    let page = page.page()?;
    let order_by = order.sql(ORDER_FIELDS, MAPPED_DEFAULT_ORDER, ORDER_TIEBREAK)?;
    let mut filter = filter_of(&QueryPairs(pairs))?;
    let db = state.db().await?;
    let run = run_or_404(&db, &dag_id, &run_id).await?;
    let version = definition_of(&db, &run).await?;
    let Some(task) = version.definition.tasks.iter().find(|t| t.task_id == task_id) else {
        return Err(ApiError::NotFound(format!(
            "task `{task_id}` is not in the DAG version of run `{run_id}` of DAG `{dag_id}`"
        )));
    };
    if task.expand.is_none() && !is_mapped(&db, &run, &task_id).await? {
        return Err(ApiError::NotFound(format!(
            "task `{task_id}` is not mapped; read it at …/taskInstances/{task_id}"
        )));
    }
    filter.run_pk = Some(run.id);
    filter.task_id = Some(task_id);
    filter.mapped_only = true;
    let (listed, total_entries) = listing::list_filtered(&db, &filter, &order_by, page.limit, page.offset).await?;
    let mut task_instances: Vec<TaskInstanceResponse> = listed.into_iter().map(TaskInstanceResponse::listed).collect();
    mask_rendered_secrets(&db, state.secrets.as_deref(), &mut task_instances).await?;
    Ok(Json(TaskInstanceCollection { task_instances, total_entries }))
}

/// Query of the routes that address one task instance by query (`map_index`, -1 unless mapped).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct MapIndexParams {
    /// Which instance of a mapped task; -1 (the default) for an unmapped task.
    map_index: Option<i32>,
}

impl MapIndexParams {
    /// The map index asked for, -1 when none.
    pub(crate) fn map_index(&self) -> i32 {
        self.map_index.unwrap_or(-1)
    }
}

/// `DELETE …/taskInstances/{task_id}?map_index`: deletes a task instance with its
/// tries, logs and XComs. Only a finished run's task instances can go: the
/// scheduler of a live run would wait for a deleted upstream forever.
#[utoipa::path(delete, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}", operation_id = "delete_task_instance", tag = "Task Instance", params(TaskInstancePath, MapIndexParams), responses((status = 200, description = "Deleted"), (status = 409, description = "The run is not finished")))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    ApiPath((dag_id, run_id, task_id)): ApiPath<(String, String, String)>,
    ApiQuery(params): ApiQuery<MapIndexParams>,
) -> Result<Json<Value>, ApiError> {
    let mut db = state.db().await?;
    let tx = db.transaction().await?;
    let run = run_or_404(&tx, &dag_id, &run_id).await?;
    let ti = ti_or_404(&tx, &dag_id, &run_id, &task_id, params.map_index()).await?;
    refuse_live_run(&run)?;
    removal::delete(&tx, &[ti.id]).await?;
    tx.commit().await?;
    tracing::info!(dag_id, run_id, task_id, map_index = ti.map_index, "task instance deleted through the API");
    Ok(Json(Value::Null))
}

/// A 409 for deleting task instances of a run that is still queued or running.
pub(crate) fn refuse_live_run(run: &DagRunRow) -> Result<(), ApiError> {
    if run.state.is_finished() {
        return Ok(());
    }
    Err(ApiError::Conflict(format!(
        "DAG run `{}` of DAG `{}` is {}; its task instances can be deleted once it finished \
         (mark it success or failed first)",
        run.run_id, run.dag_id, run.state
    )))
}

/// Masks the values of secret variables and connection secrets in rendered templates,
/// as Airflow's secrets masker does; they are read only when something was rendered.
pub(crate) async fn mask_rendered_secrets(
    db: &impl GenericClient,
    keys: Option<&gust_shared::secrets::Secrets>,
    responses: &mut [TaskInstanceResponse],
) -> Result<(), ApiError> {
    let rendered = |r: &TaskInstanceResponse| r.rendered_fields.as_object().is_some_and(|fields| !fields.is_empty());
    if !responses.iter().any(rendered) {
        return Ok(());
    }
    let secrets = super::variables::secret_values(db, keys).await?;
    if !secrets.is_empty() {
        for response in responses.iter_mut() {
            super::variables::mask_secrets(&mut response.rendered_fields, &secrets);
        }
    }
    Ok(())
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

    fn query(text: &str) -> QueryPairs {
        QueryPairs(serde_html_form::from_str(text).unwrap())
    }

    #[test]
    fn repeated_keys_fill_list_filters_and_empty_values_count_as_absent() {
        let filter =
            filter_of(&query("state=success&state=failed&pool=a&pool=&map_index=2&task_id=x&task_id=y")).unwrap();
        assert_eq!(filter.states, ["success", "failed"]);
        assert_eq!(filter.pools, ["a"]);
        assert_eq!(filter.map_indexes, [2]);
        assert_eq!(filter.task_id.as_deref(), Some("y"));
    }

    #[test]
    fn no_status_and_airflow_only_states_are_accepted_and_unknown_ones_name_the_parameter() {
        assert_eq!(state_filter("query", "no_status").unwrap(), "none");
        assert_eq!(state_filter("query", "deferred").unwrap(), "deferred");
        let error = state_filter("query", "finished").unwrap_err().to_string();
        assert!(error.contains("`state`") && error.contains("up_for_retry"), "{error}");
    }

    #[test]
    fn bad_dates_numbers_and_unsupported_filters_are_refused_by_name() {
        let midnight = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 1, 2, 0, 0, 0).unwrap();
        let filter = filter_of(&query("end_date_lt=2026-01-02&duration_gte=1.5")).unwrap();
        assert_eq!(filter.end_date.lt, Some(midnight));
        assert_eq!(filter.duration.gte, Some(1.5));
        let error = filter_of(&query("logical_date_lte=yesterday")).unwrap_err().to_string();
        assert!(error.contains("`logical_date_lte`") && error.contains("yesterday"), "{error}");
        let error = filter_of(&query("duration_gt=NaN")).unwrap_err().to_string();
        assert!(error.contains("`duration_gt`"), "{error}");
        let error = filter_of(&query("try_number=one")).unwrap_err().to_string();
        assert!(error.contains("`try_number`"), "{error}");
        let error = filter_of(&query("executor=celery")).unwrap_err().to_string();
        assert!(error.contains("`executor`"), "{error}");
        assert!(filter_of(&query("cursor=")).is_ok(), "an empty cursor asks for the first page");
    }
}
