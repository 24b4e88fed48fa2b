//! `/api/v2/dags/{dag_id}/dagRuns`: trigger a run, list runs, read one.

use std::collections::HashMap;

use axum::{extract::State, Extension, Json};
use chrono::{DateTime, SecondsFormat, Utc};
use gust_shared::dag::{resolve_params, Params};
use gust_shared::db::{
    self,
    dags::DagVersion,
    runs::{DagRunRow, NewRun, RunFilter},
    task_instances::listing::DurationRange,
    DbError, GenericClient,
};
use gust_shared::state::RunState;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{
    dags::{dag_not_found, dag_or_404, BUNDLE_NAME},
    input_checks::note_fits,
    list_query::{string_choice, Filters, QueryPairs},
    pagination::{order_by_param, OrderParams, PageParams},
    path_params::{DagPath, RunPath},
};
use crate::{
    auth::CurrentUser,
    error::ApiError,
    extract::{ApiJson, ApiPath, ApiQuery},
    AppState,
};

/// Longest accepted `dag_run_id`.
const MAX_RUN_ID_LEN: usize = 250;

/// Airflow's `DAGRunResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DagRunResponse {
    dag_run_id: String,
    dag_id: String,
    dag_display_name: String,
    logical_date: Option<DateTime<Utc>>,
    queued_at: Option<DateTime<Utc>>,
    start_date: Option<DateTime<Utc>>,
    end_date: Option<DateTime<Utc>>,
    duration: Option<f64>,
    data_interval_start: Option<DateTime<Utc>>,
    data_interval_end: Option<DateTime<Utc>>,
    run_after: DateTime<Utc>,
    last_scheduling_decision: Option<DateTime<Utc>>,
    run_type: String,
    state: &'static str,
    triggered_by: String,
    triggering_user_name: Option<String>,
    conf: Value,
    note: Option<String>,
    bundle_version: Option<String>,
    dag_versions: Vec<DagVersionResponse>,
    /// The partition the run covers; null: gust's timetables are not partitioned.
    partition_key: Option<String>,
    /// The date of that partition; null like `partition_key`.
    partition_date: Option<DateTime<Utc>>,
}

/// Airflow's `DagVersionResponse`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct DagVersionResponse {
    id: uuid::Uuid,
    version_number: i32,
    dag_id: String,
    dag_display_name: String,
    bundle_name: &'static str,
    bundle_version: Option<String>,
    bundle_url: Option<String>,
    created_at: DateTime<Utc>,
}

/// Airflow's `DAGRunCollectionResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DagRunCollection {
    dag_runs: Vec<DagRunResponse>,
    total_entries: i64,
}

impl From<&DagVersion> for DagVersionResponse {
    fn from(version: &DagVersion) -> Self {
        Self {
            id: version_uuid(version.id),
            version_number: version.version_number,
            dag_id: version.dag_id.clone(),
            dag_display_name: version.dag_id.clone(),
            bundle_name: BUNDLE_NAME,
            bundle_version: None,
            bundle_url: None,
            created_at: version.created_at,
        }
    }
}

impl DagRunResponse {
    /// The API shape of a run and the DAG version it is pinned to.
    pub(crate) fn new(run: DagRunRow, version: Option<&DagVersion>) -> Self {
        Self {
            dag_display_name: run.dag_id.clone(),
            logical_date: run.logical_date,
            queued_at: Some(run.queued_at),
            duration: seconds_between(run.start_date, run.end_date),
            start_date: run.start_date,
            end_date: run.end_date,
            data_interval_start: run.data_interval_start,
            data_interval_end: run.data_interval_end,
            run_after: run.run_after,
            last_scheduling_decision: None,
            state: run.state.as_str(),
            triggered_by: airflow_triggered_by(&run.triggered_by).to_string(),
            triggering_user_name: run.triggering_user_name,
            conf: run.conf,
            note: run.note,
            bundle_version: None,
            dag_versions: version.map(DagVersionResponse::from).into_iter().collect(),
            partition_key: run.partition_key,
            partition_date: run.partition_date,
            run_type: run.run_type,
            dag_run_id: run.run_id,
            dag_id: run.dag_id,
        }
    }
}

/// The UUID Airflow clients expect for a DAG version: gust's numeric id in the low bits.
pub(crate) fn version_uuid(version_id: i64) -> uuid::Uuid {
    uuid::Uuid::from_u64_pair(0, version_id as u64)
}

/// Seconds from `start` to `end`, when both are known.
pub(crate) fn seconds_between(start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> Option<f64> {
    let (start, end) = (start?, end?);
    Some((end - start).num_microseconds()? as f64 / 1e6)
}

/// Airflow's `DagRunTriggeredByType` for gust's `triggered_by` (the scheduler is Airflow's `timetable`).
fn airflow_triggered_by(triggered_by: &str) -> &str {
    match triggered_by {
        "scheduler" => "timetable",
        other => other,
    }
}

/// Loads a run or answers 404, saying whether the DAG or the run is unknown.
pub(crate) async fn run_or_404(db: &impl GenericClient, dag_id: &str, run_id: &str) -> Result<DagRunRow, ApiError> {
    if let Some(run) = db::runs::get(db, dag_id, run_id).await? {
        return Ok(run);
    }
    match db::dags::get(db, dag_id).await? {
        None => Err(dag_not_found(dag_id)),
        Some(_) => Err(ApiError::NotFound(format!("DAG run `{run_id}` of DAG `{dag_id}` not found"))),
    }
}

/// A DAG version for display; a version whose stored definition no longer
/// parses is left out (and logged) rather than failing the whole response.
pub(crate) async fn version_for_display(
    db: &impl GenericClient,
    version_id: i64,
) -> Result<Option<DagVersion>, ApiError> {
    match db::dags::version(db, version_id).await {
        Ok(version) => Ok(version),
        Err(DbError::Corrupt(problem)) => {
            tracing::warn!(version_id, %problem, "DAG version does not parse; omitted from the response");
            Ok(None)
        }
        Err(other) => Err(other.into()),
    }
}

/// The DAG definition a run was created from (the version it is pinned to).
pub(crate) async fn definition_of(db: &impl GenericClient, run: &DagRunRow) -> Result<DagVersion, ApiError> {
    db::dags::version(db, run.dag_version_id).await?.ok_or_else(|| {
        ApiError::Db(DbError::Corrupt(format!(
            "DAG version {} of run `{}` of DAG `{}` is missing",
            run.dag_version_id, run.run_id, run.dag_id
        )))
    })
}

/// The path segment Airflow uses for "every DAG".
pub(crate) const ALL_DAGS: &str = "~";

/// Airflow's run types; gust creates `manual`, `scheduled` and `backfill` runs, the others match nothing.
pub(crate) const RUN_TYPES: [&str; 6] =
    ["backfill", "scheduled", "manual", "operator_triggered", "asset_triggered", "asset_materialization"];

/// Airflow's `get_dag_runs` filters gust cannot apply yet: given, they are a 400, never silently ignored.
const UNSUPPORTED_FILTERS: &[&str] = &[
    "cursor",
    "dag_version",
    "bundle_version",
    "updated_at_gte",
    "updated_at_gt",
    "updated_at_lte",
    "updated_at_lt",
    "consuming_asset_pattern",
];

string_choice!(RunStateName, ["queued", "running", "success", "failed"]);
string_choice!(RunTypeName, RUN_TYPES);

/// The filters of `GET …/dagRuns`, for the OpenAPI document only: the handler
/// reads them from the raw query ([`run_filter_of`]) so that every bad value is
/// a 400 naming its parameter. Lists are repeated keys.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // never constructed: it exists for its `IntoParams` impl
pub(crate) struct RunFilters {
    /// Any of these states: queued, running, success, failed.
    #[param(inline)]
    state: Vec<RunStateName>,
    /// Any of these run types (Airflow's names; gust creates manual, scheduled and backfill runs).
    #[param(inline)]
    run_type: Vec<RunTypeName>,
    /// Logical date at or after this.
    logical_date_gte: Option<DateTime<Utc>>,
    /// Logical date after this.
    logical_date_gt: Option<DateTime<Utc>>,
    /// Logical date at or before this.
    logical_date_lte: Option<DateTime<Utc>>,
    /// Logical date before this.
    logical_date_lt: Option<DateTime<Utc>>,
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
    /// Due at or after this.
    run_after_gte: Option<DateTime<Utc>>,
    /// Due after this.
    run_after_gt: Option<DateTime<Utc>>,
    /// Due at or before this.
    run_after_lte: Option<DateTime<Utc>>,
    /// Due before this.
    run_after_lt: Option<DateTime<Utc>>,
    /// Case-insensitive substring of the run id; `|` separates alternatives, `%` and `_` match themselves.
    run_id_pattern: Option<String>,
    /// Case-sensitive prefix of the run id.
    run_id_prefix_pattern: Option<String>,
    /// Case-insensitive substring of the DAG id (useful with `~`).
    dag_id_pattern: Option<String>,
    /// Case-sensitive prefix of the DAG id.
    dag_id_prefix_pattern: Option<String>,
    /// Lasted at least this many seconds.
    duration_gte: Option<f64>,
    /// Lasted more than this many seconds.
    duration_gt: Option<f64>,
    /// Lasted at most this many seconds.
    duration_lte: Option<f64>,
    /// Lasted less than this many seconds.
    duration_lt: Option<f64>,
    /// A substring of the run's `conf` as JSON text, e.g. `"region": "eu"`.
    conf_contains: Option<String>,
    /// Partition date at or after this (gust's runs have none, so any bound keeps no run).
    partition_date_gte: Option<DateTime<Utc>>,
    /// Partition date at or before this.
    partition_date_lte: Option<DateTime<Utc>>,
    /// Case-insensitive substring of the partition key (gust's runs have none).
    partition_key_pattern: Option<String>,
    /// Case-sensitive prefix of the partition key.
    partition_key_prefix_pattern: Option<String>,
    /// Case-insensitive substring of the name of the user who triggered the run.
    triggering_user_name_pattern: Option<String>,
    /// Case-sensitive prefix of the name of the user who triggered the run.
    triggering_user_name_prefix_pattern: Option<String>,
}

/// The filters of `GET …/dagRuns`, checked: `state` and `run_type` (repeated
/// keys), `logical_date`, `start_date`, `end_date` and `run_after` bounds
/// (`_gte`, `_gt`, `_lte`, `_lt`), `run_id_pattern` and `dag_id_pattern`
/// (and their `_prefix_pattern` forms).
fn run_filter_of(query: &QueryPairs) -> Result<RunFilter, ApiError> {
    query.refuse(UNSUPPORTED_FILTERS)?;
    let states = query
        .all("state")
        .map(|value| match RunState::parse(value) {
            Some(state) => Ok(state.as_str().to_string()),
            None => Err(ApiError::invalid(
                ["query", "state"],
                "enum",
                format!("`state` has an unknown value `{value}`; use queued, running, success or failed"),
            )),
        })
        .collect::<Result<_, _>>()?;
    let run_types = query
        .all("run_type")
        .map(|value| match RUN_TYPES.contains(&value) {
            true => Ok(value.to_string()),
            false => Err(ApiError::invalid(
                ["query", "run_type"],
                "enum",
                format!("`run_type` has an unknown value `{value}`; use one of {}", RUN_TYPES.join(", ")),
            )),
        })
        .collect::<Result<_, _>>()?;
    Ok(RunFilter {
        dag_id: None,
        states,
        run_types,
        logical_date: query.time_range("logical_date")?,
        start_date: query.time_range("start_date")?,
        end_date: query.time_range("end_date")?,
        run_after: query.time_range("run_after")?,
        dag_id_matches: query.text_matches("dag_id"),
        run_id_matches: query.text_matches("run_id"),
        dag_ids: Vec::new(),
        duration: DurationRange {
            gte: seconds_param(query, "duration_gte")?,
            gt: seconds_param(query, "duration_gt")?,
            lte: seconds_param(query, "duration_lte")?,
            lt: seconds_param(query, "duration_lt")?,
        },
        conf_contains: query.last("conf_contains").map(str::to_string),
        partition_date: query.time_range("partition_date")?,
        partition_key_matches: query.text_matches("partition_key"),
        triggering_user_name_matches: query.text_matches("triggering_user_name"),
    })
}

/// A duration bound in seconds from the query, or a 400 naming it.
fn seconds_param(query: &QueryPairs, key: &str) -> Result<Option<f64>, ApiError> {
    let Some(value) = query.last(key) else { return Ok(None) };
    match value.trim().parse::<f64>() {
        Ok(seconds) if seconds.is_finite() => Ok(Some(seconds)),
        _ => Err(ApiError::BadRequest(format!("`{key}` must be a number of seconds such as 90.5, got `{value}`"))),
    }
}

order_by_param!(RunOrder, db::runs::ORDER_FIELDS);

/// `GET /api/v2/dags/{dag_id}/dagRuns`: a page of the DAG's runs (of every
/// DAG's with `~`) that the filters keep, newest first unless `order_by` says
/// otherwise (`id`, `state`, `dag_id`, `run_id`/`dag_run_id`, `run_type`,
/// `logical_date`, `run_after`, `queued_at`, `start_date`, `end_date`, `duration`, `conf`).
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/dagRuns", tag = "DagRun", operation_id = "get_dag_runs", params(DagPath, PageParams, RunOrder, Filters<RunFilters>), responses((status = 200, body = DagRunCollection)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    ApiPath(dag_id): ApiPath<String>,
    ApiQuery(page): ApiQuery<PageParams>,
    ApiQuery(order): ApiQuery<OrderParams>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> Result<Json<DagRunCollection>, ApiError> {
    let page = page.page()?;
    let order_by = order.sql(db::runs::ORDER_FIELDS, db::runs::DEFAULT_ORDER, db::runs::ORDER_TIEBREAK)?;
    let mut filter = run_filter_of(&QueryPairs(pairs))?;
    let db = state.db().await?;
    if dag_id != ALL_DAGS {
        dag_or_404(&db, &dag_id).await?;
        filter.dag_id = Some(dag_id);
    }
    let (runs, total_entries) = db::runs::list_filtered(&db, &filter, &order_by, page.limit, page.offset).await?;
    Ok(Json(DagRunCollection::of(&db, runs, total_entries).await?))
}

impl DagRunCollection {
    /// `runs` in Airflow's shape, each with its DAG version (read once per version).
    pub(crate) async fn of(
        db: &impl GenericClient,
        runs: Vec<DagRunRow>,
        total_entries: i64,
    ) -> Result<Self, ApiError> {
        let mut versions: HashMap<i64, Option<DagVersion>> = HashMap::new();
        for run in &runs {
            if let std::collections::hash_map::Entry::Vacant(slot) = versions.entry(run.dag_version_id) {
                slot.insert(version_for_display(db, run.dag_version_id).await?);
            }
        }
        let dag_runs = runs
            .into_iter()
            .map(|run| {
                let version = versions.get(&run.dag_version_id).and_then(Option::as_ref);
                DagRunResponse::new(run, version)
            })
            .collect();
        Ok(Self { dag_runs, total_entries })
    }
}

/// `GET /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}`
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}", tag = "DagRun", operation_id = "get_dag_run", params(RunPath), responses((status = 200, body = DagRunResponse)))]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    ApiPath((dag_id, run_id)): ApiPath<(String, String)>,
) -> Result<Json<DagRunResponse>, ApiError> {
    let db = state.db().await?;
    let run = run_or_404(&db, &dag_id, &run_id).await?;
    let version = version_for_display(&db, run.dag_version_id).await?;
    Ok(Json(DagRunResponse::new(run, version.as_ref())))
}

/// Body of `POST /dags/{dag_id}/dagRuns` (Airflow's `TriggerDAGRunPostBody`).
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct TriggerBody {
    /// 1-250 letters, digits, `_`, `-`, `.`, `:`, `+` or `~`; made up from the time when absent.
    #[schema(pattern = "^[A-Za-z0-9_.:+~-]{1,250}$")]
    dag_run_id: Option<String>,
    #[schema(schema_with = crate::openapi::date_time_or_null)]
    logical_date: Option<DateTime<Utc>>,
    /// Given together with `data_interval_end`, or neither.
    #[schema(schema_with = crate::openapi::date_time_or_null)]
    data_interval_start: Option<DateTime<Utc>>,
    /// Given together with `data_interval_start`, or neither.
    #[schema(schema_with = crate::openapi::date_time_or_null)]
    data_interval_end: Option<DateTime<Utc>>,
    /// A JSON object that fits the DAG's params; null or absent for `{}`.
    #[schema(value_type = Option<Object>)]
    conf: Option<Value>,
    #[schema(max_length = 1000)]
    note: Option<String>,
    /// When the run is due: now when absent; a time in the future is refused (gust starts a manual run at once).
    #[schema(schema_with = crate::openapi::date_time_or_null)]
    run_after: Option<DateTime<Utc>>,
    /// Must be null or absent: gust's DAGs are not partitioned.
    #[schema(value_type = Option<String>)]
    partition_key: Option<String>,
}

/// [`TriggerBody`] as the OpenAPI document shows it: its fields, with the data
/// interval given whole (both bounds) or not at all, as the handler checks.
pub(crate) struct TriggerRequest;

impl utoipa::PartialSchema for TriggerRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AllOfBuilder, AnyOfBuilder, ObjectBuilder, Type};
        let bounds = |kind: Type| {
            ObjectBuilder::new()
                .property("data_interval_start", ObjectBuilder::new().schema_type(kind.clone()))
                .property("data_interval_end", ObjectBuilder::new().schema_type(kind))
        };
        let both = bounds(Type::String).required("data_interval_start").required("data_interval_end");
        AllOfBuilder::new()
            .item(<TriggerBody as utoipa::PartialSchema>::schema())
            .item(AnyOfBuilder::new().item(bounds(Type::Null)).item(both))
            .into()
    }
}

impl utoipa::ToSchema for TriggerRequest {
    fn name() -> std::borrow::Cow<'static, str> {
        "TriggerBody".into()
    }
}

/// `POST /api/v2/dags/{dag_id}/dagRuns`: creates a manual run in state `queued`.
#[utoipa::path(post, path = "/api/v2/dags/{dag_id}/dagRuns", tag = "DagRun", operation_id = "trigger_dag_run", params(DagPath), request_body = TriggerRequest, responses((status = 200, body = DagRunResponse), (status = 409, description = "A run with this run id or logical date exists")))]
pub(crate) async fn trigger(
    State(state): State<AppState>,
    Extension(actor): Extension<CurrentUser>,
    ApiPath(dag_id): ApiPath<String>,
    ApiJson(body): ApiJson<TriggerBody>,
) -> Result<Json<DagRunResponse>, ApiError> {
    create_run(state, actor, dag_id, body, "manual").await
}

/// Creates a run of `run_type` (`manual`, or `asset_materialization` for
/// `POST /assets/{asset_id}/materialize`) from a trigger body, in state `queued`.
pub(crate) async fn create_run(
    state: AppState,
    actor: CurrentUser,
    dag_id: String,
    body: TriggerBody,
    run_type: &'static str,
) -> Result<Json<DagRunResponse>, ApiError> {
    let conf = conf_of(body.conf)?;
    let run_id = match body.dag_run_id {
        Some(run_id) => {
            validate_run_id(&run_id).map_err(|problem| ApiError::BadRequest(format!("dag_run_id {problem}")))?;
            run_id
        }
        None => default_run_id(run_type, Utc::now()),
    };
    let data_interval = data_interval_of(body.logical_date, body.data_interval_start, body.data_interval_end)?;
    note_fits(body.note.as_deref())?;
    if body.partition_key.is_some() {
        return Err(ApiError::BadRequest(format!(
            "DAG `{dag_id}` is not a partitioned DAG and does not accept a partition_key; leave it out or null"
        )));
    }
    if body.run_after.is_some_and(|run_after| run_after > Utc::now()) {
        return Err(ApiError::BadRequest(
            "`run_after` is in the future; gust starts a manual run at once, so give a past time or leave it out"
                .into(),
        ));
    }

    let mut db = state.db().await?;
    let tx = db.transaction().await?;
    let dag = dag_or_404(&tx, &dag_id).await?;
    if !dag.is_active {
        return Err(ApiError::NotFound(format!(
            "DAG `{dag_id}` is stale: its file is no longer in the DAG folder, so it cannot be triggered"
        )));
    }
    let latest = db::dags::version(&tx, dag.latest_version_id).await?.ok_or_else(|| {
        ApiError::Db(DbError::Corrupt(format!("DAG version {} of DAG `{dag_id}` is missing", dag.latest_version_id)))
    })?;
    check_conf(&dag_id, &latest.definition.params, &conf)?;
    let new_run = NewRun {
        dag_id: &dag_id,
        run_id: &run_id,
        run_type,
        logical_date: body.logical_date,
        data_interval,
        conf: &conf,
        dag_version_id: dag.latest_version_id,
        triggered_by: "rest_api",
        triggering_user_name: Some(&actor.username),
    };
    let mut run = db::runs::insert(&tx, &new_run).await?;
    if let Some(run_after) = body.run_after {
        db::runs::set_run_after(&tx, run.id, run_after).await?;
        run.run_after = run_after;
    }
    if let Some(note) = body.note {
        db::runs::set_note(&tx, run.id, Some(&note)).await?;
        run.note = Some(note);
    }
    tx.commit().await?;
    tracing::info!(dag_id, run_id, "DAG run triggered through the API");
    let version = version_for_display(&db, run.dag_version_id).await?;
    Ok(Json(DagRunResponse::new(run, version.as_ref())))
}

/// The run id Airflow gives a run created through the API: its run type, `__` and the trigger time.
fn default_run_id(run_type: &str, now: DateTime<Utc>) -> String {
    format!("{run_type}__{}", now.to_rfc3339_opts(SecondsFormat::Micros, false))
}

/// Checks a client-chosen run id: 1-250 of letters, digits and `_ - . : + ~`
/// (Airflow's `allowed_run_id_pattern`), so it is safe in URLs and file names.
pub(crate) fn validate_run_id(run_id: &str) -> Result<(), String> {
    if run_id.is_empty() {
        return Err("must not be empty".into());
    }
    if run_id.chars().count() > MAX_RUN_ID_LEN {
        return Err(format!("must be at most {MAX_RUN_ID_LEN} characters"));
    }
    if let Some(bad) = run_id.chars().find(|c| !(c.is_ascii_alphanumeric() || "_-.:+~".contains(*c))) {
        return Err(format!("`{run_id}` contains {bad:?}; use only letters, digits and _ - . : + ~"));
    }
    Ok(())
}

/// Checks a trigger's `conf` against the DAG's declared params; a mismatch is a 400 naming the param.
fn check_conf(dag_id: &str, params: &Params, conf: &Value) -> Result<(), ApiError> {
    let empty = serde_json::Map::new();
    resolve_params(params, conf.as_object().unwrap_or(&empty))
        .map(drop)
        .map_err(|error| ApiError::BadRequest(format!("`conf` does not fit the params of DAG `{dag_id}`: {error}")))
}

/// The run's `conf`: a JSON object, `{}` when absent or null.
fn conf_of(conf: Option<Value>) -> Result<Value, ApiError> {
    match conf {
        None | Some(Value::Null) => Ok(Value::Object(Default::default())),
        Some(conf @ Value::Object(_)) => Ok(conf),
        Some(other) => Err(ApiError::BadRequest(format!(
            "`conf` must be a JSON object such as {{\"key\": \"value\"}}, got {}",
            json_kind(&other)
        ))),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A run's data interval: start and end.
type DataInterval = (DateTime<Utc>, DateTime<Utc>);

/// The data interval: both bounds given, or `logical_date` to `logical_date`, or none.
fn data_interval_of(
    logical_date: Option<DateTime<Utc>>,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
) -> Result<Option<DataInterval>, ApiError> {
    match (start, end) {
        (Some(start), Some(end)) if start > end => {
            Err(ApiError::BadRequest("`data_interval_start` must not be after `data_interval_end`".into()))
        }
        (Some(start), Some(end)) => Ok(Some((start, end))),
        (None, None) => Ok(logical_date.map(|date| (date, date))),
        _ => Err(ApiError::BadRequest("give both `data_interval_start` and `data_interval_end`, or neither".into())),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    #[test]
    fn airflow_style_run_ids_are_accepted() {
        for ok in ["manual__2026-01-01T00:00:00.123456+00:00", "my-run_1.2", "a", "x~y", &"r".repeat(250)] {
            assert_eq!(validate_run_id(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn empty_long_slashed_or_odd_run_ids_are_rejected() {
        for bad in ["", "a/b", "has space", "semi;colon", "ü", "../etc", &"r".repeat(251)] {
            assert!(validate_run_id(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(validate_run_id("a/b").unwrap_err().contains("'/'"));
    }

    #[test]
    fn the_default_run_id_is_manual_and_the_time_with_microseconds() {
        let now = Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap() + chrono::Duration::microseconds(89);
        let run_id = default_run_id("manual", now);
        assert_eq!(run_id, "manual__2026-03-04T05:06:07.000089+00:00");
        assert_eq!(validate_run_id(&run_id), Ok(()));
    }

    #[test]
    fn conf_must_be_an_object_and_defaults_to_empty() {
        assert_eq!(conf_of(None).unwrap(), json!({}));
        assert_eq!(conf_of(Some(Value::Null)).unwrap(), json!({}));
        assert_eq!(conf_of(Some(json!({"a": 1}))).unwrap(), json!({"a": 1}));
        let error = conf_of(Some(json!([1]))).unwrap_err().to_string();
        assert!(error.contains("an array"), "{error}");
    }

    #[test]
    fn the_data_interval_needs_both_bounds_in_order() {
        let day = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let next = day + chrono::Duration::days(1);
        assert_eq!(data_interval_of(Some(day), None, None).unwrap(), Some((day, day)));
        assert_eq!(data_interval_of(None, None, None).unwrap(), None);
        assert_eq!(data_interval_of(None, Some(day), Some(next)).unwrap(), Some((day, next)));
        assert!(data_interval_of(None, Some(next), Some(day)).is_err());
        assert!(data_interval_of(None, Some(day), None).is_err());
    }

    #[test]
    fn durations_are_float_seconds_when_both_ends_are_known() {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let end = start + chrono::Duration::milliseconds(1500);
        assert_eq!(seconds_between(Some(start), Some(end)), Some(1.5));
        assert_eq!(seconds_between(Some(start), None), None);
        assert_eq!(seconds_between(None, Some(end)), None);
    }

    #[test]
    fn scheduler_runs_are_triggered_by_airflows_timetable() {
        assert_eq!(airflow_triggered_by("scheduler"), "timetable");
        assert_eq!(airflow_triggered_by("rest_api"), "rest_api");
    }
}
