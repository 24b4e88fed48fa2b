//! `/api/v2/backfills`: runs for a DAG's past data intervals (Airflow 3's
//! backfill API): create, preview (`dry_run`), list, read, pause, unpause,
//! cancel.
//!
//! A backfill covers the DAG's data intervals whose logical date (interval
//! start) lies in `[from_date, to_date]` and that have ended, within the DAG's
//! own `start_date`/`end_date`. A logical date that already has a run keeps
//! it, unless `reprocess_behavior` says to run it again (`failed`: a failed
//! run; `completed`: a failed or successful one); a queued or running run is
//! never touched. Runs are created (or re-queued) in one transaction.

use std::collections::HashMap;
use utoipa::{IntoParams, ToSchema};

use axum::{extract::State, Extension, Json};
use chrono::{DateTime, TimeDelta, Utc};
use gust_shared::{
    dag::{resolve_params, DataInterval, Schedule, ScheduleBounds},
    db::{
        self,
        backfills::{BackfillRow, ExistingRun, NewBackfill, ReprocessBehavior},
        dags::DagVersion,
        runs::NewRun,
        DbError, GenericClient,
    },
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::{dags::dag_or_404, pagination::PageParams};
use crate::{
    auth::CurrentUser,
    error::ApiError,
    extract::{ApiJson, ApiPath, ApiQuery},
    AppState,
};

/// Most data intervals one backfill may cover.
pub(crate) const MAX_BACKFILL_RUNS: usize = 10_000;
/// `max_active_runs` of a backfill when the request names none (Airflow's default).
const DEFAULT_MAX_ACTIVE_RUNS: i32 = 10;

/// Body of `POST /backfills` and `POST /backfills/dry_run` (Airflow's `BackfillPostBody`).
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct BackfillPostBody {
    dag_id: String,
    from_date: DateTime<Utc>,
    to_date: DateTime<Utc>,
    #[serde(default)]
    run_backwards: bool,
    /// The `conf` of every run: a JSON object, or null for `{}`.
    #[schema(value_type = Option<Object>)]
    dag_run_conf: Option<Value>,
    #[serde(default)]
    #[schema(schema_with = reprocess_behaviors)]
    reprocess_behavior: ReprocessBehavior,
    #[serde(default = "default_max_active_runs")]
    #[schema(minimum = 1, maximum = 2147483647)]
    max_active_runs: i64,
    #[schema(schema_with = crate::openapi::only_null)]
    task_id_pattern: Option<String>,
}

/// The values of `reprocess_behavior`, for the OpenAPI document.
fn reprocess_behaviors() -> utoipa::openapi::schema::Object {
    crate::openapi::one_of_strings(["none", "failed", "completed"])
}

fn default_max_active_runs() -> i64 {
    i64::from(DEFAULT_MAX_ACTIVE_RUNS)
}

/// Airflow's `BackfillResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BackfillResponse {
    id: i64,
    dag_id: String,
    from_date: DateTime<Utc>,
    to_date: DateTime<Utc>,
    dag_run_conf: Value,
    is_paused: bool,
    #[schema(value_type = String, example = "none")]
    reprocess_behavior: ReprocessBehavior,
    max_active_runs: i32,
    created_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
    dag_display_name: String,
}

/// Airflow's `BackfillCollectionResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BackfillCollection {
    backfills: Vec<BackfillResponse>,
    total_entries: i64,
}

/// Airflow's `DryRunBackfillResponse`: one run the backfill would create or re-run.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DryRunBackfill {
    logical_date: DateTime<Utc>,
    /// Airflow's partitioned backfills; gust backfills by logical date, so always null.
    #[schema(schema_with = crate::openapi::only_null)]
    partition_key: Option<String>,
    /// Airflow's partitioned backfills; gust backfills by logical date, so always null.
    #[schema(schema_with = crate::openapi::only_null)]
    partition_date: Option<DateTime<Utc>>,
}

/// Airflow's `DryRunBackfillCollectionResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DryRunCollection {
    backfills: Vec<DryRunBackfill>,
    total_entries: usize,
}

/// Query of `GET /backfills`: the DAG (required, as in Airflow) and the order.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListFilters {
    dag_id: String,
    /// `id` (the default) or `-id`.
    #[param(pattern = "^-?id$")]
    order_by: Option<String>,
}

impl From<BackfillRow> for BackfillResponse {
    fn from(row: BackfillRow) -> Self {
        Self {
            id: row.id,
            dag_display_name: row.dag_id.clone(),
            dag_id: row.dag_id,
            from_date: row.from_date,
            to_date: row.to_date,
            dag_run_conf: row.dag_run_conf,
            is_paused: row.is_paused,
            reprocess_behavior: row.reprocess_behavior,
            max_active_runs: row.max_active_runs,
            created_at: row.created_at,
            completed_at: row.completed_at,
            updated_at: row.updated_at,
        }
    }
}

/// A request checked on its own, before the DAG is looked at.
#[derive(Debug)]
struct Request {
    body: BackfillPostBody,
    /// The `conf` every run gets: the given object, or `{}`.
    conf: Value,
    max_active_runs: i32,
}

/// What a backfill does with each covered logical date.
#[derive(Debug, Default)]
struct Plan {
    /// Logical dates without a run: a new run each, in start order.
    create: Vec<DataInterval>,
    /// Finished runs the reprocess behaviour runs again, in start order.
    rerun: Vec<ExistingRun>,
    /// Logical dates whose run is left alone.
    skipped: usize,
    /// Every logical date the backfill would run, in start order.
    order: Vec<DateTime<Utc>>,
}

/// Checks what can be checked without the database; 400 naming the field otherwise.
fn checked(body: BackfillPostBody) -> Result<Request, ApiError> {
    if body.from_date > body.to_date {
        return Err(ApiError::BadRequest(format!(
            "from_date ({}) must not be after to_date ({})",
            body.from_date.to_rfc3339(),
            body.to_date.to_rfc3339()
        )));
    }
    let max_active_runs = i32::try_from(body.max_active_runs).ok().filter(|n| *n >= 1).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "max_active_runs must be a whole number of 1 or more, got {}",
            body.max_active_runs
        ))
    })?;
    if body.task_id_pattern.is_some() {
        return Err(ApiError::BadRequest(
            "`task_id_pattern` (backfilling only some tasks) is not supported; leave it out or null".into(),
        ));
    }
    let conf = match &body.dag_run_conf {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(conf @ Value::Object(_)) => conf.clone(),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "`dag_run_conf` must be a JSON object such as {\"key\": \"value\"}, or null".into(),
            ))
        }
    };
    Ok(Request { body, conf, max_active_runs })
}

/// The data intervals of `schedule` (within `bounds`) whose start lies in
/// `[from, to]` and that have ended by `now`, oldest first; the count when
/// there are more than `max`.
fn covered_intervals(
    schedule: &Schedule,
    bounds: &ScheduleBounds,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
    max: usize,
) -> Result<Vec<DataInterval>, usize> {
    let mut intervals = Vec::new();
    let mut prev = from.checked_sub_signed(TimeDelta::seconds(1));
    while let Some(interval) = schedule.next_interval_after(prev, bounds) {
        if interval.start > to || interval.end > now {
            break;
        }
        prev = Some(interval.start);
        if interval.start < from {
            continue;
        }
        if intervals.len() == max {
            return Err(max + 1);
        }
        intervals.push(interval);
    }
    Ok(intervals)
}

/// Sorts the covered intervals into new runs, re-runs and skips.
fn plan(intervals: Vec<DataInterval>, existing: Vec<ExistingRun>, reprocess: ReprocessBehavior) -> Plan {
    let mut existing: HashMap<DateTime<Utc>, ExistingRun> =
        existing.into_iter().map(|run| (run.logical_date, run)).collect();
    let mut plan = Plan::default();
    for interval in intervals {
        match existing.remove(&interval.start) {
            None => plan.create.push(interval),
            Some(run) if reprocess.reruns(run.state) => plan.rerun.push(run),
            Some(_) => {
                plan.skipped += 1;
                continue;
            }
        }
        plan.order.push(interval.start);
    }
    plan
}

/// The DAG's latest definition, checked for a backfill: known, not stale,
/// with a periodic schedule, and `conf` fitting its params.
async fn backfillable_dag(db: &impl GenericClient, request: &Request) -> Result<DagVersion, ApiError> {
    let dag_id = &request.body.dag_id;
    let dag = dag_or_404(db, dag_id).await?;
    if !dag.is_active {
        return Err(ApiError::NotFound(format!(
            "DAG `{dag_id}` is stale: its file is no longer in the DAG folder, so it cannot be backfilled"
        )));
    }
    let version = db::dags::version(db, dag.latest_version_id).await?.ok_or_else(|| {
        ApiError::Db(DbError::Corrupt(format!("DAG version {} of DAG `{dag_id}` is missing", dag.latest_version_id)))
    })?;
    let definition = &version.definition;
    match &definition.schedule {
        None => {
            return Err(ApiError::BadRequest(format!(
                "DAG `{dag_id}` has no schedule, so it has no data intervals to backfill; \
                 trigger runs with POST /api/v2/dags/{dag_id}/dagRuns instead"
            )))
        }
        Some(schedule) if schedule.is_once() => {
            return Err(ApiError::BadRequest(format!(
                "DAG `{dag_id}` is scheduled `@once`, which is not periodic and cannot be backfilled"
            )))
        }
        Some(_) => {}
    }
    let empty = serde_json::Map::new();
    resolve_params(&definition.params, request.conf.as_object().unwrap_or(&empty)).map_err(|error| {
        ApiError::BadRequest(format!("`dag_run_conf` does not fit the params of DAG `{dag_id}`: {error}"))
    })?;
    Ok(version)
}

/// The covered intervals of the DAG for the request, or a 400 that says why there are none or too many.
fn intervals_for(version: &DagVersion, request: &Request, now: DateTime<Utc>) -> Result<Vec<DataInterval>, ApiError> {
    let body = &request.body;
    if body.from_date >= now {
        return Err(ApiError::BadRequest(format!(
            "from_date ({}) is in the future; a backfill covers only data intervals that have ended",
            body.from_date.to_rfc3339()
        )));
    }
    let dag = &version.definition;
    let schedule = dag.schedule.as_ref().expect("backfillable_dag checked the schedule");
    covered_intervals(schedule, &dag.schedule_bounds(), body.from_date, body.to_date, now, MAX_BACKFILL_RUNS).map_err(
        |_| {
            ApiError::BadRequest(format!(
                "from_date to to_date covers more than {MAX_BACKFILL_RUNS} data intervals of DAG `{}` \
                 (schedule `{}`); split it into several backfills",
                dag.dag_id, schedule.text
            ))
        },
    )
}

fn backfill_not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("backfill {id} not found"))
}

fn already_completed(id: i64) -> ApiError {
    ApiError::Conflict(format!("backfill {id} is already completed (or cancelled)"))
}

/// 404 when the backfill is missing, else 409 (it completed): why a change to it found no active backfill.
async fn missing_or_completed(db: &impl GenericClient, id: i64) -> ApiError {
    match db::backfills::get(db, id).await {
        Ok(Some(_)) => already_completed(id),
        Ok(None) => backfill_not_found(id),
        Err(error) => error.into(),
    }
}

/// `POST /api/v2/backfills`: creates the backfill and its runs (state `queued`).
#[utoipa::path(post, path = "/api/v2/backfills", tag = "Backfill", request_body = BackfillPostBody, responses((status = 200, body = BackfillResponse), (status = 404, description = "The DAG does not exist or is stale"), (status = 409, description = "The DAG has an active backfill")))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(actor): Extension<CurrentUser>,
    ApiJson(body): ApiJson<BackfillPostBody>,
) -> Result<Json<BackfillResponse>, ApiError> {
    let request = checked(body)?;
    let body = &request.body;
    let dag_id = body.dag_id.as_str();
    let mut db = state.db().await?;
    let tx = db.transaction().await?;
    let version = backfillable_dag(&tx, &request).await?;
    if let Some(active) = db::backfills::active_for_dag(&tx, dag_id).await? {
        return Err(ApiError::Conflict(format!(
            "there is already a running backfill (id {}) for DAG `{dag_id}`; wait for it to complete or cancel it",
            active.id
        )));
    }
    let intervals = intervals_for(&version, &request, chrono::Utc::now())?;
    if intervals.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "no ended data interval of DAG `{dag_id}` starts between {} and {} (its schedule `{}` starts at {})",
            body.from_date.to_rfc3339(),
            body.to_date.to_rfc3339(),
            version.definition.schedule.as_ref().map_or("", |s| s.text.as_str()),
            version.definition.start_date.to_rfc3339()
        )));
    }
    let new = NewBackfill {
        dag_id,
        from_date: body.from_date,
        to_date: body.to_date,
        run_backwards: body.run_backwards,
        dag_run_conf: &request.conf,
        reprocess_behavior: body.reprocess_behavior,
        max_active_runs: request.max_active_runs,
    };
    let backfill = db::backfills::insert(&tx, &new).await?;
    db::runs::lock_run_creation(&tx, dag_id).await?;
    let dates: Vec<DateTime<Utc>> = intervals.iter().map(|i| i.start).collect();
    let existing = db::backfills::runs_at(&tx, dag_id, &dates, true).await?;
    let plan = plan(intervals, existing, body.reprocess_behavior);

    let mut created = Vec::with_capacity(plan.create.len());
    for interval in &plan.create {
        let run_id = format!("backfill__{}", interval.start.to_rfc3339());
        let new_run = NewRun {
            dag_id,
            run_id: &run_id,
            run_type: "backfill",
            logical_date: Some(interval.start),
            data_interval: Some((interval.start, interval.end)),
            conf: &request.conf,
            dag_version_id: version.id,
            triggered_by: "backfill",
            triggering_user_name: Some(&actor.username),
        };
        created.push(db::runs::insert(&tx, &new_run).await?.id);
    }
    db::backfills::attach_runs(&tx, backfill.id, &created).await?;
    let conf_override = body.dag_run_conf.as_ref().filter(|c| !c.is_null());
    for run in &plan.rerun {
        rerun(&tx, backfill.id, run, conf_override, &actor.username).await?;
    }
    if plan.order.is_empty() {
        db::backfills::complete_if_done(&tx, backfill.id).await?;
    }
    let backfill = db::backfills::get(&tx, backfill.id).await?.ok_or_else(|| backfill_not_found(backfill.id))?;
    tx.commit().await?;
    tracing::info!(
        dag_id,
        backfill_id = backfill.id,
        created = created.len(),
        rerun = plan.rerun.len(),
        skipped = plan.skipped,
        "backfill created through the API"
    );
    Ok(Json(backfill.into()))
}

/// Runs an existing finished run again for the backfill, as Airflow's backfill
/// does: every task instance is cleared and the run goes back to `queued`.
async fn rerun(
    db: &impl GenericClient,
    backfill_id: i64,
    run: &ExistingRun,
    conf: Option<&Value>,
    triggering_user_name: &str,
) -> Result<(), ApiError> {
    let version = db::dags::version(db, run.dag_version_id).await?.ok_or_else(|| {
        ApiError::Db(DbError::Corrupt(format!("DAG version {} of run `{}` is missing", run.dag_version_id, run.run_id)))
    })?;
    let retries: HashMap<&str, i32> = version
        .definition
        .tasks
        .iter()
        .map(|t| (t.task_id.as_str(), i32::try_from(t.retries).unwrap_or(i32::MAX)))
        .collect();
    let tis = db::task_instances::listing::list_for_run(db, run.id).await?;
    let ids: Vec<Uuid> = tis.iter().map(|ti| ti.id).collect();
    let task_retries: Vec<i32> = tis.iter().map(|ti| retries.get(ti.task_id.as_str()).copied().unwrap_or(0)).collect();
    db::task_instances::repair::clear(db, &ids, &task_retries).await?;
    db::backfills::adopt_run(db, backfill_id, run.id, conf, Some(triggering_user_name)).await?;
    db::runs::requeue(db, run.id).await?;
    Ok(())
}

/// `POST /api/v2/backfills/dry_run`: the logical dates a backfill would run, in the order it would start them.
#[utoipa::path(post, path = "/api/v2/backfills/dry_run", tag = "Backfill", request_body = BackfillPostBody, responses((status = 200, body = DryRunCollection), (status = 404, description = "The DAG does not exist or is stale")))]
pub(crate) async fn dry_run(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<BackfillPostBody>,
) -> Result<Json<DryRunCollection>, ApiError> {
    let request = checked(body)?;
    let db = state.db().await?;
    let version = backfillable_dag(&db, &request).await?;
    let intervals = intervals_for(&version, &request, chrono::Utc::now())?;
    let dates: Vec<DateTime<Utc>> = intervals.iter().map(|i| i.start).collect();
    let existing = db::backfills::runs_at(&db, &request.body.dag_id, &dates, false).await?;
    let mut order = plan(intervals, existing, request.body.reprocess_behavior).order;
    if request.body.run_backwards {
        order.reverse();
    }
    let backfills: Vec<DryRunBackfill> = order
        .into_iter()
        .map(|logical_date| DryRunBackfill { logical_date, partition_key: None, partition_date: None })
        .collect();
    Ok(Json(DryRunCollection { total_entries: backfills.len(), backfills }))
}

/// `GET /api/v2/backfills?dag_id=…`: the DAG's backfills by id (`order_by=-id` for newest first).
#[utoipa::path(get, path = "/api/v2/backfills", tag = "Backfill", params(PageParams, ListFilters), responses((status = 200, body = BackfillCollection)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<PageParams>,
    ApiQuery(filters): ApiQuery<ListFilters>,
) -> Result<Json<BackfillCollection>, ApiError> {
    let page = page.page()?;
    let descending = match filters.order_by.as_deref() {
        None | Some("id") => false,
        Some("-id") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!("backfills can be ordered by `id` or `-id`, not `{other}`")))
        }
    };
    let db = state.db().await?;
    let (rows, total_entries) = db::backfills::list(&db, &filters.dag_id, descending, page.limit, page.offset).await?;
    Ok(Json(BackfillCollection { backfills: rows.into_iter().map(BackfillResponse::from).collect(), total_entries }))
}

/// `GET /api/v2/backfills/{backfill_id}`
#[utoipa::path(get, path = "/api/v2/backfills/{backfill_id}", tag = "Backfill", params(("backfill_id" = i64, Path, description = "The backfill's id")), responses((status = 200, body = BackfillResponse)))]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<BackfillResponse>, ApiError> {
    let db = state.db().await?;
    let backfill = db::backfills::get(&db, id).await?.ok_or_else(|| backfill_not_found(id))?;
    Ok(Json(backfill.into()))
}

/// `PUT /api/v2/backfills/{backfill_id}/pause`: the backfill starts no new runs; running ones go on.
#[utoipa::path(put, path = "/api/v2/backfills/{backfill_id}/pause", tag = "Backfill", params(("backfill_id" = i64, Path, description = "The backfill's id")), responses((status = 200, body = BackfillResponse), (status = 409, description = "The backfill is completed or cancelled")))]
pub(crate) async fn pause(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<BackfillResponse>, ApiError> {
    set_paused(&state, id, true).await
}

/// `PUT /api/v2/backfills/{backfill_id}/unpause`
#[utoipa::path(put, path = "/api/v2/backfills/{backfill_id}/unpause", tag = "Backfill", params(("backfill_id" = i64, Path, description = "The backfill's id")), responses((status = 200, body = BackfillResponse), (status = 409, description = "The backfill is completed or cancelled")))]
pub(crate) async fn unpause(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<BackfillResponse>, ApiError> {
    set_paused(&state, id, false).await
}

async fn set_paused(state: &AppState, id: i64, paused: bool) -> Result<Json<BackfillResponse>, ApiError> {
    let db = state.db().await?;
    match db::backfills::set_paused(&db, id, paused).await? {
        Some(backfill) => {
            tracing::info!(backfill_id = id, is_paused = paused, "backfill pause state changed through the API");
            if !paused {
                db::signals::Signal::run_queued(&db, &backfill.dag_id).await?;
            }
            Ok(Json(backfill.into()))
        }
        None => Err(missing_or_completed(&db, id).await),
    }
}

/// `PUT /api/v2/backfills/{backfill_id}/cancel`: its queued runs become
/// `failed`, running ones finish, and the backfill is completed now.
#[utoipa::path(put, path = "/api/v2/backfills/{backfill_id}/cancel", tag = "Backfill", params(("backfill_id" = i64, Path, description = "The backfill's id")), responses((status = 200, body = BackfillResponse), (status = 409, description = "The backfill is completed or cancelled")))]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<BackfillResponse>, ApiError> {
    let mut db = state.db().await?;
    let tx = db.transaction().await?;
    let Some((backfill, failed)) = db::backfills::cancel(&tx, id).await? else {
        drop(tx);
        return Err(missing_or_completed(&db, id).await);
    };
    tx.commit().await?;
    tracing::info!(backfill_id = id, dag_id = %backfill.dag_id, failed, "backfill cancelled through the API");
    Ok(Json(backfill.into()))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use gust_shared::state::RunState;
    use serde_json::json;

    use super::*;

    fn day(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, d, 0, 0, 0).unwrap()
    }

    /// The schedule and bounds of a DAG file with this `schedule` and `start_date`.
    fn scheduled(schedule: &str, start_date: &str) -> (Schedule, ScheduleBounds) {
        let yaml = format!(
            "dag_id: d\nschedule: {schedule}\nstart_date: {start_date}\ntasks:\n  - {{id: a, operator: noop}}\n"
        );
        let dag = gust_shared::dag::parse_dag_file("dags/d.yaml", &yaml).expect("the test DAG parses");
        (dag.schedule.clone().expect("a schedule"), dag.schedule_bounds())
    }

    fn daily_from(start_date: DateTime<Utc>) -> (Schedule, ScheduleBounds) {
        scheduled("'@daily'", &start_date.format("%Y-%m-%d").to_string())
    }

    fn starts(intervals: &[DataInterval]) -> Vec<DateTime<Utc>> {
        intervals.iter().map(|i| i.start).collect()
    }

    fn body(value: Value) -> BackfillPostBody {
        serde_json::from_value(value).expect("a valid body")
    }

    #[test]
    fn covered_intervals_are_those_starting_between_from_and_to_inclusive() {
        let (daily, bounds) = daily_from(day(1));
        let covered = covered_intervals(&daily, &bounds, day(3), day(7), day(20), 100).unwrap();
        assert_eq!(starts(&covered), (3..=7).map(day).collect::<Vec<_>>());
        let mid_day = day(3) + TimeDelta::hours(5);
        assert_eq!(
            starts(&covered_intervals(&daily, &bounds, mid_day, day(5), day(20), 100).unwrap()),
            [day(4), day(5)]
        );
    }

    #[test]
    fn covered_intervals_stop_at_the_last_interval_that_has_ended() {
        let (daily, bounds) = daily_from(day(1));
        let now = day(6) + TimeDelta::hours(1);
        assert_eq!(
            starts(&covered_intervals(&daily, &bounds, day(3), day(30), now, 100).unwrap()),
            [day(3), day(4), day(5)]
        );
    }

    #[test]
    fn covered_intervals_respect_the_dags_start_date() {
        let (daily, bounds) = daily_from(day(4));
        assert_eq!(
            starts(&covered_intervals(&daily, &bounds, day(1), day(5), day(20), 100).unwrap()),
            [day(4), day(5)]
        );
    }

    #[test]
    fn fixed_intervals_stay_on_their_grid_anchored_at_start_date() {
        let (every, bounds) = scheduled("{every: 6h}", "2026-01-01T01:00:00");
        let covered = covered_intervals(&every, &bounds, day(2), day(3), day(20), 100).unwrap();
        let hours: Vec<i64> = covered.iter().map(|i| (i.start - day(2)).num_hours()).collect();
        assert_eq!(hours, [1, 7, 13, 19]);
    }

    #[test]
    fn more_intervals_than_the_maximum_are_refused() {
        let (daily, bounds) = daily_from(day(1));
        assert_eq!(covered_intervals(&daily, &bounds, day(1), day(10), day(20), 10).unwrap().len(), 10);
        assert!(covered_intervals(&daily, &bounds, day(1), day(11), day(20), 10).is_err());
    }

    fn existing(d: u32, state: RunState) -> ExistingRun {
        ExistingRun { id: i64::from(d), run_id: format!("r{d}"), logical_date: day(d), state, dag_version_id: 1 }
    }

    #[test]
    fn the_plan_creates_missing_dates_and_reruns_only_what_the_behaviour_names() {
        let (daily, bounds) = daily_from(day(1));
        let intervals = || covered_intervals(&daily, &bounds, day(1), day(4), day(20), 100).unwrap();
        let runs =
            || vec![existing(1, RunState::Success), existing(2, RunState::Failed), existing(3, RunState::Running)];
        let none = plan(intervals(), runs(), ReprocessBehavior::None);
        assert_eq!((starts(&none.create), none.rerun.len(), none.skipped), (vec![day(4)], 0, 3));
        let failed = plan(intervals(), runs(), ReprocessBehavior::Failed);
        assert_eq!(failed.rerun.iter().map(|r| r.id).collect::<Vec<_>>(), [2]);
        assert_eq!(failed.order, [day(2), day(4)]);
        let completed = plan(intervals(), runs(), ReprocessBehavior::Completed);
        assert_eq!(completed.order, [day(1), day(2), day(4)], "a running run is never touched");
    }

    #[test]
    fn airflows_body_defaults_apply() {
        let request = checked(body(json!({"dag_id": "d", "from_date": day(1), "to_date": day(2)}))).unwrap();
        assert_eq!(request.max_active_runs, 10);
        assert_eq!(request.body.reprocess_behavior, ReprocessBehavior::None);
        assert!(!request.body.run_backwards);
        assert_eq!(request.conf, json!({}));
    }

    #[test]
    fn bad_requests_are_refused_naming_the_field() {
        let refused = |value: Value| checked(body(value)).unwrap_err().to_string();
        let detail = refused(json!({"dag_id": "d", "from_date": day(3), "to_date": day(2)}));
        assert!(detail.starts_with("from_date (2026-01-03T00:00:00+00:00) must not be after to_date"), "{detail}");
        let detail = refused(json!({"dag_id": "d", "from_date": day(1), "to_date": day(2), "max_active_runs": 0}));
        assert!(detail.contains("max_active_runs"), "{detail}");
        let detail = refused(json!({"dag_id": "d", "from_date": day(1), "to_date": day(2), "dag_run_conf": [1]}));
        assert!(detail.contains("dag_run_conf"), "{detail}");
        let detail = refused(json!({"dag_id": "d", "from_date": day(1), "to_date": day(2), "task_id_pattern": "a"}));
        assert!(detail.contains("task_id_pattern"), "{detail}");
    }
}
