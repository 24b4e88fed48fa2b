//! Queries on `task_instances`. Every state change is a compare-and-set
//! built from [`TaskState::allowed_from`], keyed on the try number where a
//! worker is involved, so a stale or duplicate actor changes nothing.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use super::{
    filters::{Conditions, TextMatch, TimeRange},
    DbError, GenericClient, TASK_FINISHED_CHANNEL,
};
use crate::{dag::TaskSpec, state::TaskState};

/// A task instance as stored.
#[derive(Debug, Clone)]
pub struct TaskInstanceRow {
    /// Primary key.
    pub id: Uuid,
    /// The run's primary key.
    pub run_pk: i64,
    /// The DAG.
    pub dag_id: String,
    /// The run.
    pub run_id: String,
    /// The task.
    pub task_id: String,
    /// -1 unless mapped.
    pub map_index: i32,
    /// Operator name.
    pub operator: String,
    /// Queue it is routed to.
    pub queue: String,
    /// Current state.
    pub state: TaskState,
    /// Current (or last) try; 0 before the first.
    pub try_number: i32,
    /// Retries allowed (Airflow's `max_tries`).
    pub max_tries: i32,
    /// Worker that ran the current try.
    pub hostname: Option<String>,
    /// Process id of the current try.
    pub pid: Option<i32>,
    /// Exit code of the current try.
    pub exit_code: Option<i32>,
    /// Why the current try failed.
    pub failure_reason: Option<String>,
    /// When the next try is due, while `up_for_retry`.
    pub next_retry_at: Option<DateTime<Utc>>,
    /// When the current try was queued.
    pub queued_at: Option<DateTime<Utc>>,
    /// When the current try started.
    pub start_date: Option<DateTime<Utc>>,
    /// When the current try ended.
    pub end_date: Option<DateTime<Utc>>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// The operator's arguments as rendered for the latest dispatched try.
    pub rendered_fields: Option<serde_json::Value>,
    /// Pool whose slots it occupies while queued or running.
    pub pool: String,
    /// Slots of the pool it occupies.
    pub pool_slots: i32,
    /// Dispatch order among waiting task instances: higher first.
    pub priority_weight: i32,
}

/// The CTE that copies the tries in `done` into `task_instance_tries`, each
/// try's own history row; shared by every statement that ends a try.
macro_rules! record_try_history {
    () => {
        "history AS ( \
             INSERT INTO task_instance_tries \
                 (ti_id, try_number, state, hostname, exit_code, failure_reason, queued_at, start_date, end_date) \
             SELECT id, try_number, state, hostname, exit_code, failure_reason, queued_at, start_date, end_date FROM done \
             ON CONFLICT (ti_id, try_number) DO UPDATE SET state = EXCLUDED.state, exit_code = EXCLUDED.exit_code, \
                 failure_reason = EXCLUDED.failure_reason, end_date = EXCLUDED.end_date)"
    };
}

const TI_COLUMNS: &str = "id, run_pk, dag_id, run_id, task_id, map_index, operator, queue, state, try_number, \
     max_tries, hostname, pid, exit_code, failure_reason, next_retry_at, queued_at, start_date, end_date, updated_at, rendered_fields, \
     pool, pool_slots, priority_weight";

fn ti_row(row: &Row) -> Result<TaskInstanceRow, DbError> {
    let state: String = row.get("state");
    Ok(TaskInstanceRow {
        id: row.get("id"),
        run_pk: row.get("run_pk"),
        dag_id: row.get("dag_id"),
        run_id: row.get("run_id"),
        task_id: row.get("task_id"),
        map_index: row.get("map_index"),
        operator: row.get("operator"),
        queue: row.get("queue"),
        state: TaskState::parse(&state).ok_or_else(|| DbError::Corrupt(format!("task state `{state}`")))?,
        try_number: row.get("try_number"),
        max_tries: row.get("max_tries"),
        hostname: row.get("hostname"),
        pid: row.get("pid"),
        exit_code: row.get("exit_code"),
        failure_reason: row.get("failure_reason"),
        next_retry_at: row.get("next_retry_at"),
        queued_at: row.get("queued_at"),
        start_date: row.get("start_date"),
        end_date: row.get("end_date"),
        updated_at: row.get("updated_at"),
        rendered_fields: row.get("rendered_fields"),
        pool: row.get("pool"),
        pool_slots: row.get("pool_slots"),
        priority_weight: row.get("priority_weight"),
    })
}

/// Creates one task instance per task of a run in one statement: `scheduled`
/// for tasks without upstreams, `none` for the others.
pub async fn create_for_run(
    db: &impl GenericClient,
    run_pk: i64,
    dag_id: &str,
    run_id: &str,
    tasks: &[TaskSpec],
) -> Result<u64, DbError> {
    let task_ids: Vec<&str> = tasks.iter().map(|t| t.task_id.as_str()).collect();
    let operators: Vec<&str> = tasks.iter().map(|t| t.operator.name()).collect();
    let queues: Vec<&str> = tasks.iter().map(|t| t.queue.as_str()).collect();
    let max_tries: Vec<i32> = tasks.iter().map(|t| i32::try_from(t.retries).unwrap_or(i32::MAX)).collect();
    let pools: Vec<&str> = tasks.iter().map(|t| t.pool.as_str()).collect();
    let pool_slots: Vec<i32> = tasks.iter().map(|t| i32::try_from(t.pool_slots).unwrap_or(i32::MAX)).collect();
    let weights: Vec<i32> = tasks.iter().map(|t| t.priority_weight).collect();
    // A task without upstreams may run whatever its trigger rule: it starts `scheduled`,
    // which spares a large fan-out a second pass over every row before its first dispatch.
    let states: Vec<&str> =
        tasks.iter().map(|t| if t.upstream.is_empty() && t.expand.is_none() { "scheduled" } else { "none" }).collect();
    Ok(db
        .execute(
            "INSERT INTO task_instances (run_pk, dag_id, run_id, task_id, operator, queue, max_tries, \
                 pool, pool_slots, priority_weight, state) \
             SELECT $1, $2, $3, t.task_id, t.operator, t.queue, t.max_tries, t.pool, t.pool_slots, t.priority_weight, t.state \
             FROM unnest($4::text[], $5::text[], $6::text[], $7::int[], $8::text[], $9::int[], $10::int[], $11::text[]) \
                 AS t(task_id, operator, queue, max_tries, pool, pool_slots, priority_weight, state) \
             ON CONFLICT (run_pk, task_id, map_index) DO NOTHING",
            &[&run_pk, &dag_id, &run_id, &task_ids, &operators, &queues, &max_tries, &pools, &pool_slots, &weights, &states],
        )
        .await?)
}

/// Every task instance of a run, for the API.
pub async fn list_for_run(db: &impl GenericClient, run_pk: i64) -> Result<Vec<TaskInstanceRow>, DbError> {
    let sql = format!(
        "SELECT {TI_COLUMNS} FROM task_instances WHERE run_pk = $1 ORDER BY start_date NULLS LAST, task_id, map_index"
    );
    db.query(&sql, &[&run_pk]).await?.iter().map(ti_row).collect()
}

/// A task instance with the fields of its run that the API shows beside it.
#[derive(Debug, Clone)]
pub struct ListedTaskInstance {
    /// The task instance.
    pub ti: TaskInstanceRow,
    /// The run's logical date.
    pub logical_date: Option<DateTime<Utc>>,
    /// The run's `run_after`.
    pub run_after: DateTime<Utc>,
}

/// Bounds on a task instance's duration in seconds; each bound that is set must hold.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DurationRange {
    /// Greater than or equal to.
    pub gte: Option<f64>,
    /// Strictly greater than.
    pub gt: Option<f64>,
    /// Less than or equal to.
    pub lte: Option<f64>,
    /// Strictly less than.
    pub lt: Option<f64>,
}

/// Which task instances [`list_filtered`] returns; an unset field or an
/// empty list matches every task instance.
#[derive(Debug, Clone, Default)]
pub struct TaskInstanceFilter {
    /// The run's primary key (the fastest way to name one run).
    pub run_pk: Option<i64>,
    /// The DAG.
    pub dag_id: Option<String>,
    /// The run id (in any DAG unless `dag_id` is set).
    pub run_id: Option<String>,
    /// The task.
    pub task_id: Option<String>,
    /// Any of these states (API spellings; names gust never uses match nothing).
    pub states: Vec<String>,
    /// Any of these pools.
    pub pools: Vec<String>,
    /// Any of these queues.
    pub queues: Vec<String>,
    /// Any of these operators.
    pub operators: Vec<String>,
    /// Any of these map indexes.
    pub map_indexes: Vec<i32>,
    /// Any of these try numbers.
    pub try_numbers: Vec<i32>,
    /// The run's logical date.
    pub logical_date: TimeRange,
    /// The run's `run_after`.
    pub run_after: TimeRange,
    /// When the current try started.
    pub start_date: TimeRange,
    /// When the current try ended.
    pub end_date: TimeRange,
    /// Last change.
    pub updated_at: TimeRange,
    /// Seconds from start to end of the current try (unfinished ones have none and never match).
    pub duration: DurationRange,
    /// Text matches on the DAG id, all of which must hold.
    pub dag_id_matches: Vec<TextMatch>,
    /// Text matches on the run id.
    pub run_id_matches: Vec<TextMatch>,
    /// Text matches on the task id (gust's display name).
    pub task_id_matches: Vec<TextMatch>,
    /// Text matches on the pool.
    pub pool_matches: Vec<TextMatch>,
    /// Text matches on the queue.
    pub queue_matches: Vec<TextMatch>,
    /// Text matches on the operator.
    pub operator_matches: Vec<TextMatch>,
}

/// The SQL of a task instance's duration in seconds (null until it has both ends).
const DURATION_SQL: &str = "EXTRACT(EPOCH FROM ti.end_date - ti.start_date)::float8";

/// The fields a task instance listing may be ordered by (Airflow's names) and
/// their SQL over `task_instances ti JOIN dag_runs r`; only these static
/// strings ever reach an `ORDER BY`.
pub const ORDER_FIELDS: &[(&str, &str)] = &[
    ("id", "ti.id"),
    ("state", "ti.state"),
    ("duration", DURATION_SQL),
    ("start_date", "ti.start_date"),
    ("end_date", "ti.end_date"),
    ("map_index", "ti.map_index"),
    // gust renders no map index names; the index itself is what it would show.
    ("rendered_map_index", "ti.map_index"),
    ("try_number", "ti.try_number"),
    ("logical_date", "r.logical_date"),
    ("run_after", "r.run_after"),
    ("data_interval_start", "r.data_interval_start"),
    ("data_interval_end", "r.data_interval_end"),
    ("operator", "ti.operator"),
    ("task_id", "ti.task_id"),
    ("dag_id", "ti.dag_id"),
    ("run_id", "ti.run_id"),
    ("dag_run_id", "ti.run_id"),
    ("pool", "ti.pool"),
    ("queue", "ti.queue"),
    ("priority_weight", "ti.priority_weight"),
    ("pool_slots", "ti.pool_slots"),
    ("max_tries", "ti.max_tries"),
    ("hostname", "ti.hostname"),
    ("queued_when", "ti.queued_at"),
    ("updated_at", "ti.updated_at"),
];

/// The order of a listing that names none: as [`list_for_run`] lists a run.
pub const DEFAULT_ORDER: &str = "ti.start_date ASC";

/// Appended to every listing's order so pages are stable: the unique key.
pub const ORDER_TIEBREAK: &str = "ti.dag_id ASC, ti.run_id ASC, ti.task_id ASC, ti.map_index ASC";

fn conditions(filter: &TaskInstanceFilter) -> Conditions {
    let mut c = Conditions::default();
    let ints = |values: &[i32]| (!values.is_empty()).then(|| values.to_vec());
    c.push_opt("ti.run_pk = $?", filter.run_pk);
    c.push_opt("ti.dag_id = $?", filter.dag_id.clone());
    c.push_opt("ti.run_id = $?", filter.run_id.clone());
    c.push_opt("ti.task_id = $?", filter.task_id.clone());
    c.push_any("ti.state = ANY($?)", &filter.states);
    c.push_any("ti.pool = ANY($?)", &filter.pools);
    c.push_any("ti.queue = ANY($?)", &filter.queues);
    c.push_any("ti.operator = ANY($?)", &filter.operators);
    c.push_opt("ti.map_index = ANY($?)", ints(&filter.map_indexes));
    c.push_opt("ti.try_number = ANY($?)", ints(&filter.try_numbers));
    c.push_range("r.logical_date", &filter.logical_date);
    c.push_range("r.run_after", &filter.run_after);
    c.push_range("ti.start_date", &filter.start_date);
    c.push_range("ti.end_date", &filter.end_date);
    c.push_range("ti.updated_at", &filter.updated_at);
    // The same expression as DURATION_SQL (concat! needs the literal).
    macro_rules! duration {
        ($operator:literal) => {
            concat!("EXTRACT(EPOCH FROM ti.end_date - ti.start_date)::float8 ", $operator, " $?")
        };
    }
    c.push_opt(duration!(">="), filter.duration.gte);
    c.push_opt(duration!(">"), filter.duration.gt);
    c.push_opt(duration!("<="), filter.duration.lte);
    c.push_opt(duration!("<"), filter.duration.lt);
    let matches: [(&'static str, &[TextMatch]); 6] = [
        ("ti.dag_id", &filter.dag_id_matches),
        ("ti.run_id", &filter.run_id_matches),
        ("ti.task_id", &filter.task_id_matches),
        ("ti.pool", &filter.pool_matches),
        ("ti.queue", &filter.queue_matches),
        ("ti.operator", &filter.operator_matches),
    ];
    for (column, texts) in matches {
        for text in texts {
            c.push_match(column, Some(text));
        }
    }
    c
}

/// One page of the task instances `filter` matches, across runs and DAGs,
/// with the run fields the API shows, and how many match in all.
/// `order_by` must be built only from [`ORDER_FIELDS`], [`DEFAULT_ORDER`] and
/// [`ORDER_TIEBREAK`]: it is SQL.
pub async fn list_filtered(
    db: &impl GenericClient,
    filter: &TaskInstanceFilter,
    order_by: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<ListedTaskInstance>, i64), DbError> {
    let conditions = conditions(filter);
    let where_sql = conditions.where_sql();
    let mut params = conditions.params();
    let count_sql = format!("SELECT count(*) FROM task_instances ti JOIN dag_runs r ON r.id = ti.run_pk {where_sql}");
    let total: i64 = db.query_one(&count_sql, &params).await?.get(0);
    let columns: Vec<String> = TI_COLUMNS.split(',').map(|c| format!("ti.{}", c.trim())).collect();
    let sql = format!(
        "SELECT {}, r.logical_date AS run_logical_date, r.run_after AS run_run_after \
         FROM task_instances ti JOIN dag_runs r ON r.id = ti.run_pk {where_sql} \
         ORDER BY {order_by} LIMIT ${} OFFSET ${}",
        columns.join(", "),
        params.len() + 1,
        params.len() + 2
    );
    params.push(&limit);
    params.push(&offset);
    let rows = db.query(&sql, &params).await?;
    let listed = rows
        .iter()
        .map(|row| {
            Ok(ListedTaskInstance {
                ti: ti_row(row)?,
                logical_date: row.get("run_logical_date"),
                run_after: row.get("run_run_after"),
            })
        })
        .collect::<Result<_, DbError>>()?;
    Ok((listed, total))
}

/// True when some DAG has a run with this run id (for listings across DAGs that name a run).
pub async fn any_run_with_id(db: &impl GenericClient, run_id: &str) -> Result<bool, DbError> {
    Ok(db.query_opt("SELECT 1 FROM dag_runs WHERE run_id = $1 LIMIT 1", &[&run_id]).await?.is_some())
}

/// One task instance as the scheduler's readiness pass sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceState {
    /// Primary key.
    pub id: Uuid,
    /// The task.
    pub task_id: String,
    /// -1 unless mapped (a mapped task not expanded yet has one instance at -1).
    pub map_index: i32,
    /// Current state.
    pub state: TaskState,
}

/// Every task instance of a run, for scheduling decisions.
pub async fn states_for_run(db: &impl GenericClient, run_pk: i64) -> Result<Vec<InstanceState>, DbError> {
    let rows =
        db.query("SELECT id, task_id, map_index, state FROM task_instances WHERE run_pk = $1", &[&run_pk]).await?;
    rows.iter().map(instance_state).collect()
}

fn instance_state(r: &Row) -> Result<InstanceState, DbError> {
    let state: String = r.get(3);
    let state = TaskState::parse(&state).ok_or_else(|| DbError::Corrupt(format!("task state `{state}`")))?;
    Ok(InstanceState { id: r.get(0), task_id: r.get(1), map_index: r.get(2), state })
}

/// Every task instance of the named tasks of a run.
pub async fn states_of_tasks(
    db: &impl GenericClient,
    run_pk: i64,
    task_ids: &[&str],
) -> Result<Vec<InstanceState>, DbError> {
    let statement = db
        .prepare_cached(
            "SELECT id, task_id, map_index, state FROM task_instances WHERE run_pk = $1 AND task_id = ANY($2)",
        )
        .await?;
    let rows = db.query(&statement, &[&run_pk, &task_ids]).await?;
    rows.iter().map(instance_state).collect()
}

/// Expands a mapped task's placeholder instance (`map_index` -1, state `none`)
/// into one scheduled instance per element of `items`: the placeholder becomes
/// index 0 and copies of it take the others. Returns false when the
/// placeholder was already expanded or moved on.
pub async fn expand_mapped(
    db: &impl GenericClient,
    placeholder: Uuid,
    items: &[serde_json::Value],
) -> Result<bool, DbError> {
    let Some((first, rest)) = items.split_first() else { return Ok(false) };
    let updated = db
        .execute(
            "UPDATE task_instances SET map_index = 0, map_item = $2, state = 'scheduled', updated_at = now() \
             WHERE id = $1 AND map_index = -1 AND state = 'none'",
            &[&placeholder, first],
        )
        .await?;
    if updated == 0 {
        return Ok(false);
    }
    if !rest.is_empty() {
        // Copies every column of the expanded instance (pool, queue, max_tries…) but its identity and element.
        db.execute(
            "INSERT INTO task_instances \
             SELECT (jsonb_populate_record(t, jsonb_build_object('id', gen_random_uuid(), 'map_index', i.n, 'map_item', i.item))).* \
             FROM task_instances t, unnest($2::jsonb[]) WITH ORDINALITY AS i(item, n) WHERE t.id = $1",
            &[&placeholder, &rest],
        )
        .await?;
    }
    Ok(true)
}

/// Fails a mapped task's placeholder whose list could not be read (not a
/// list, no XCom, too long), with the reason, and wakes the schedulers.
pub async fn fail_unexpandable(db: &impl GenericClient, placeholder: Uuid, reason: &str) -> Result<bool, DbError> {
    let row = db
        .query_opt(
            "UPDATE task_instances SET state = 'failed', try_number = 1, failure_reason = $2, start_date = now(), \
                 end_date = now(), updated_at = now() \
             WHERE id = $1 AND map_index = -1 AND state = 'none' RETURNING run_pk, task_id",
            &[&placeholder, &reason],
        )
        .await?;
    let Some(row) = row else { return Ok(false) };
    let (run_pk, task_id): (i64, String) = (row.get(0), row.get(1));
    db.execute("SELECT pg_notify($1, $2)", &[&TASK_FINISHED_CHANNEL, &format!("{run_pk}:{task_id}")]).await?;
    Ok(true)
}

/// Whether any task instance of the run is unfinished (served by the partial index on live task instances).
pub async fn any_unfinished(db: &impl GenericClient, run_pk: i64) -> Result<bool, DbError> {
    let statement = db
        .prepare_cached(concat!(
            "SELECT EXISTS (SELECT 1 FROM task_instances WHERE run_pk = $1 AND state IN ",
            unfinished_states!(),
            ")"
        ))
        .await?;
    Ok(db.query_one(&statement, &[&run_pk]).await?.get(0))
}

/// The run's outcome once none of its task instances is unfinished (served
/// by the partial index on live task instances), else `None`: `failed` when
/// one of the `leaves` (tasks without downstream) failed or was upstream_failed.
pub async fn run_outcome(
    db: &impl GenericClient,
    run_pk: i64,
    leaves: &[String],
) -> Result<Option<crate::state::RunState>, DbError> {
    let statement = db
        .prepare_cached(concat!(
            "SELECT CASE WHEN EXISTS (SELECT 1 FROM task_instances WHERE run_pk = $1 AND state IN ",
            unfinished_states!(),
            ") THEN NULL \
                 WHEN EXISTS (SELECT 1 FROM task_instances WHERE run_pk = $1 AND task_id = ANY($2) \
                     AND state IN ('failed', 'upstream_failed')) THEN 'failed' \
                 ELSE 'success' END"
        ))
        .await?;
    let outcome: Option<String> = db.query_one(&statement, &[&run_pk, &leaves]).await?.get(0);
    Ok(outcome.map(|o| if o == "failed" { crate::state::RunState::Failed } else { crate::state::RunState::Success }))
}

/// Moves the given task instances to `next` where the transition is allowed; returns how many moved.
pub async fn transition_many(db: &impl GenericClient, ids: &[Uuid], next: TaskState) -> Result<u64, DbError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let finished = next.is_finished();
    let statement = db
        .prepare_cached(
            "UPDATE task_instances SET state = $2, updated_at = now(), \
             end_date = CASE WHEN $4 THEN now() ELSE end_date END \
             WHERE id = ANY($1) AND state = ANY($3)",
        )
        .await?;
    Ok(db.execute(&statement, &[&ids, &next.as_str(), &next.allowed_from_strs(), &finished]).await?)
}

/// A scheduled task instance ready to be published, with what its message needs.
#[derive(Debug, Clone)]
pub struct Dispatchable {
    /// Task instance id.
    pub id: Uuid,
    /// The run's primary key.
    pub run_pk: i64,
    /// The DAG.
    pub dag_id: String,
    /// The run.
    pub run_id: String,
    /// The task.
    pub task_id: String,
    /// -1 unless mapped.
    pub map_index: i32,
    /// Try number the message will carry.
    pub next_try: i32,
    /// The run's logical date.
    pub logical_date: Option<DateTime<Utc>>,
    /// The DAG version of the run.
    pub dag_version_id: i64,
    /// The run's data interval, when it has one.
    pub data_interval: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// When the run was due (the time templates use when it has no logical date).
    pub run_after: DateTime<Utc>,
    /// The run's trigger `conf`.
    pub conf: serde_json::Value,
    /// The operator as rendered for the current try, when it had templates.
    pub rendered_fields: Option<serde_json::Value>,
    /// The element a mapped task instance runs for.
    pub map_item: Option<serde_json::Value>,
}

/// Advisory lock key that serializes dispatch across schedulers ("gustdisp"),
/// so slot and `max_active_tasks` counts cannot be raced.
const DISPATCH_LOCK: i64 = 0x6775_7374_6469_7370;

/// Whether any task instance waits in `scheduled`: one probe of the partial
/// dispatch index, so a wake-up with nothing to dispatch skips the slot
/// accounting of [`take_for_dispatch`], which reads every in-flight task instance.
pub async fn any_scheduled(db: &impl GenericClient) -> Result<bool, DbError> {
    let statement = db.prepare_cached("SELECT EXISTS (SELECT 1 FROM task_instances WHERE state = 'scheduled')").await?;
    Ok(db.query_one(&statement, &[]).await?.get(0))
}

/// Takes up to `limit` scheduled task instances that fit, and moves them to
/// `queued` with their next try number. Run inside a transaction that commits
/// only after the broker confirmed.
///
/// Nothing is taken beyond the free slots of each pool (its slots minus the
/// `pool_slots` of its queued and running task instances) or beyond the
/// `max_active_tasks` of each DAG (minus its queued and running ones). Among
/// the candidates, higher `priority_weight` goes first, then older runs; in
/// each pool they are taken in that order until one does not fit, so a task
/// needing many slots is not starved by smaller ones behind it. Task
/// instances whose pool does not exist stay `scheduled` (see
/// [`super::pools::problems`]). Dispatch holds a transaction-scoped advisory
/// lock, taken in its own statement so the counts that follow see every
/// earlier dispatch's commit.
pub async fn take_for_dispatch(db: &impl GenericClient, limit: i64) -> Result<Vec<Dispatchable>, DbError> {
    let lock = db.prepare_cached("SELECT pg_advisory_xact_lock($1)").await?;
    db.execute(&lock, &[&DISPATCH_LOCK]).await?;
    let statement = db
        .prepare_cached(
            "WITH in_flight AS ( \
                 SELECT pool, dag_id, pool_slots FROM task_instances WHERE state IN ('queued', 'running')), \
             pool_free AS ( \
                 SELECT p.name, p.slots - coalesce((SELECT sum(f.pool_slots) FROM in_flight f WHERE f.pool = p.name), 0) AS free \
                 FROM pools p), \
             dag_free AS ( \
                 SELECT d.dag_id, d.max_active_tasks - (SELECT count(*) FROM in_flight f WHERE f.dag_id = d.dag_id) AS free \
                 FROM dags d WHERE d.dag_id IN (SELECT r.dag_id FROM dag_runs r WHERE r.state IN ('queued', 'running'))), \
             candidates AS ( \
                 SELECT c.id, c.dag_id, c.pool, c.pool_slots, c.priority_weight, c.run_pk \
                 FROM dag_free d CROSS JOIN pool_free p CROSS JOIN LATERAL ( \
                     SELECT ti.id, ti.dag_id, ti.pool, ti.pool_slots, ti.priority_weight, ti.run_pk FROM task_instances ti \
                     WHERE ti.state = 'scheduled' AND ti.dag_id = d.dag_id AND ti.pool = p.name \
                     ORDER BY ti.priority_weight DESC, ti.run_pk, ti.id \
                     LIMIT greatest(least(d.free, p.free, $1), 0)) c \
                 WHERE d.free > 0 AND p.free > 0), \
             within_dag AS ( \
                 SELECT c.*, row_number() OVER ( \
                     PARTITION BY c.dag_id ORDER BY c.priority_weight DESC, c.run_pk, c.id) AS dag_rank \
                 FROM candidates c), \
             within_pool AS ( \
                 SELECT w.*, sum(w.pool_slots) OVER ( \
                     PARTITION BY w.pool ORDER BY w.priority_weight DESC, w.run_pk, w.id \
                     ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS pool_used \
                 FROM within_dag w JOIN dag_free d ON d.dag_id = w.dag_id WHERE w.dag_rank <= d.free), \
             picked AS ( \
                 SELECT ti.id FROM within_pool w JOIN pool_free p ON p.name = w.pool JOIN task_instances ti ON ti.id = w.id \
                 WHERE w.pool_used <= p.free AND ti.state = 'scheduled' \
                 ORDER BY w.priority_weight DESC, w.run_pk, w.id LIMIT $1 \
                 FOR UPDATE OF ti SKIP LOCKED) \
             UPDATE task_instances ti SET state = 'queued', try_number = ti.try_number + 1, queued_at = now(), \
                 updated_at = now(), hostname = NULL, pid = NULL, exit_code = NULL, start_date = NULL, end_date = NULL \
             FROM picked, dag_runs r \
             WHERE ti.id = picked.id AND r.id = ti.run_pk AND ti.state = 'scheduled' \
             RETURNING ti.id, ti.run_pk, ti.dag_id, ti.run_id, ti.task_id, ti.map_index, ti.try_number, \
                 r.logical_date, r.dag_version_id, r.data_interval_start, r.data_interval_end, r.run_after, r.conf, \
                 NULL::jsonb, ti.map_item",
        )
        .await?;
    let rows = db.query(&statement, &[&limit]).await?;
    Ok(rows.iter().map(dispatchable).collect())
}

fn dispatchable(r: &Row) -> Dispatchable {
    Dispatchable {
        id: r.get(0),
        run_pk: r.get(1),
        dag_id: r.get(2),
        run_id: r.get(3),
        task_id: r.get(4),
        map_index: r.get(5),
        next_try: r.get(6),
        logical_date: r.get(7),
        dag_version_id: r.get(8),
        data_interval: r.get::<_, Option<DateTime<Utc>>>(9).zip(r.get::<_, Option<DateTime<Utc>>>(10)),
        run_after: r.get(11),
        conf: r.get(12),
        rendered_fields: r.get(13),
        map_item: r.get(14),
    }
}

/// Records the operator arguments rendered for the tries just dispatched.
pub async fn set_rendered_fields(
    db: &impl GenericClient,
    ids: &[Uuid],
    fields: &[serde_json::Value],
) -> Result<(), DbError> {
    if ids.is_empty() {
        return Ok(());
    }
    db.execute(
        "UPDATE task_instances ti SET rendered_fields = f.fields FROM unnest($1::uuid[], $2::jsonb[]) AS f(id, fields) \
         WHERE ti.id = f.id",
        &[&ids, &fields],
    )
    .await?;
    Ok(())
}

/// Fails a try taken for dispatch whose templates could not be rendered; no
/// retry, since the same templates would fail the same way.
pub async fn fail_unrenderable(
    db: &impl GenericClient,
    id: Uuid,
    try_number: i32,
    reason: &str,
) -> Result<bool, DbError> {
    let outcome = TryOutcome::failed_without_retry(reason);
    Ok(end_try(db, id, try_number, &["queued"], &outcome).await?.is_some())
}

/// What a worker found when it tried to claim a try.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The try is ours: `queued → running` succeeded.
    Claimed,
    /// The task instance exists but this try is not queued (already run, running elsewhere, or superseded).
    NotClaimable {
        /// Its current state.
        state: TaskState,
        /// Its current try.
        try_number: i32,
    },
    /// The same try is `running` on another worker (a redelivery after a
    /// connection loss or a crash); `heartbeat_age` says how long it has been silent.
    Held {
        /// The running try (later than the message's after takeovers).
        try_number: i32,
        /// Worker recorded on the try.
        hostname: Option<String>,
        /// Time since its last heartbeat.
        heartbeat_age: std::time::Duration,
    },
    /// No such task instance.
    Missing,
}

/// Claims try `try_number` of a task instance for a worker (`queued → running`,
/// or `up_for_retry → running` when the retry comes back from its delay queue).
///
/// Run inside a transaction. The row is locked first: if the scheduler that
/// published this try has not committed yet, the lock waits for that commit
/// and then sees its result, so a fast worker never mistakes a try that is
/// being dispatched for a stale one.
pub async fn claim(db: &impl GenericClient, id: Uuid, try_number: i32, hostname: &str) -> Result<Claim, DbError> {
    let Some(row) = db
        .query_opt(
            "SELECT state, try_number, hostname, \
                 extract(epoch FROM now() - coalesce(last_heartbeat_at, start_date, now()))::float8 \
             FROM task_instances WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await?
    else {
        return Ok(Claim::Missing);
    };
    let state: String = row.get(0);
    let state = TaskState::parse(&state).ok_or_else(|| DbError::Corrupt(format!("task state `{state}`")))?;
    let current: i32 = row.get(1);
    // A redelivered message keeps the try number it was published with; takeovers after
    // worker deaths move the running try on, so a later running try is still this message's.
    if state == TaskState::Running && current >= try_number {
        let age: f64 = row.get(3);
        return Ok(Claim::Held {
            try_number: current,
            hostname: row.get(2),
            heartbeat_age: std::time::Duration::from_secs_f64(age.max(0.0)),
        });
    }
    let claimable = match state {
        TaskState::Queued => current == try_number,
        TaskState::UpForRetry => current + 1 == try_number,
        _ => false,
    };
    if !claimable {
        return Ok(Claim::NotClaimable { state, try_number: current });
    }
    let pid = i32::try_from(std::process::id()).unwrap_or(0);
    db.execute(
        "UPDATE task_instances SET state = 'running', try_number = $2, hostname = $3, pid = $4, start_date = now(), \
         end_date = NULL, exit_code = NULL, failure_reason = NULL, next_retry_at = NULL, updated_at = now(), \
         last_heartbeat_at = now(), \
         queued_at = CASE WHEN state = 'up_for_retry' THEN now() ELSE queued_at END \
         WHERE id = $1",
        &[&id, &try_number, &hostname, &pid],
    )
    .await?;
    Ok(Claim::Claimed)
}

/// Takes over try `try_number`, still `running` on a worker that stopped
/// heartbeating: that try is closed as failed (its own history row says
/// why) and the task continues as the next try on `hostname`, with one more
/// try allowed so a dead worker does not use up the task's retries.
/// Returns the new try number, or `None` when the try moved on meanwhile.
pub async fn take_over(
    db: &impl GenericClient,
    id: Uuid,
    try_number: i32,
    hostname: &str,
    reason: &str,
) -> Result<Option<i32>, DbError> {
    let row = db
        .query_opt(
            "WITH old AS ( \
                 SELECT id, try_number, hostname, queued_at, start_date FROM task_instances \
                 WHERE id = $1 AND try_number = $2 AND state = 'running' FOR UPDATE), \
             history AS ( \
                 INSERT INTO task_instance_tries (ti_id, try_number, state, hostname, failure_reason, queued_at, start_date) \
                 SELECT id, try_number, 'failed', hostname, $4, queued_at, start_date FROM old \
                 ON CONFLICT (ti_id, try_number) DO NOTHING) \
             UPDATE task_instances ti SET try_number = ti.try_number + 1, max_tries = ti.max_tries + 1, hostname = $3, \
                 pid = $5, start_date = now(), last_heartbeat_at = now(), updated_at = now() \
             FROM old WHERE ti.id = old.id RETURNING ti.try_number",
            &[&id, &try_number, &hostname, &reason, &(i32::try_from(std::process::id()).unwrap_or(0))],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Gives a running try back to the queue (its worker is shutting down and
/// could not finish it in time): `running → queued`, same try, so the
/// redelivered message can be claimed by another worker.
pub async fn hand_back(db: &impl GenericClient, id: Uuid, try_number: i32) -> Result<bool, DbError> {
    Ok(db
        .execute(
            "UPDATE task_instances SET state = 'queued', hostname = NULL, pid = NULL, start_date = NULL, \
                 last_heartbeat_at = NULL, updated_at = now() \
             WHERE id = $1 AND try_number = $2 AND state = 'running'",
            &[&id, &try_number],
        )
        .await?
        == 1)
}

/// Records that `hostname` is still running these task instances.
pub async fn heartbeat(db: &impl GenericClient, ids: &[Uuid], hostname: &str) -> Result<u64, DbError> {
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(db
        .execute(
            "UPDATE task_instances SET last_heartbeat_at = now() WHERE id = ANY($1) AND state = 'running' AND hostname = $2",
            &[&ids, &hostname],
        )
        .await?)
}

/// A running try whose worker stopped heartbeating.
#[derive(Debug, Clone)]
pub struct Zombie {
    /// Task instance id.
    pub id: Uuid,
    /// The try that was running.
    pub try_number: i32,
    /// The worker it ran on.
    pub hostname: Option<String>,
}

/// Running tries (up to `limit`) whose last heartbeat is older than `threshold`, locked for handling.
pub async fn lock_zombies(
    db: &impl GenericClient,
    threshold: std::time::Duration,
    limit: i64,
) -> Result<Vec<Zombie>, DbError> {
    let seconds = threshold.as_secs_f64();
    let rows = db
        .query(
            "SELECT id, try_number, hostname FROM task_instances \
             WHERE state = 'running' AND last_heartbeat_at < now() - $1 * interval '1 second' \
             ORDER BY last_heartbeat_at LIMIT $2 FOR UPDATE SKIP LOCKED",
            &[&seconds, &limit],
        )
        .await?;
    Ok(rows.iter().map(|r| Zombie { id: r.get(0), try_number: r.get(1), hostname: r.get(2) }).collect())
}

/// What the scheduler needs to publish the next try of a task instance.
pub async fn dispatch_info(db: &impl GenericClient, id: Uuid) -> Result<Option<Dispatchable>, DbError> {
    let row = db
        .query_opt(
            "SELECT ti.id, ti.run_pk, ti.dag_id, ti.run_id, ti.task_id, ti.map_index, ti.try_number + 1, \
                 r.logical_date, r.dag_version_id, r.data_interval_start, r.data_interval_end, r.run_after, r.conf, \
                 ti.rendered_fields, ti.map_item \
             FROM task_instances ti JOIN dag_runs r ON r.id = ti.run_pk WHERE ti.id = $1",
            &[&id],
        )
        .await?;
    Ok(row.as_ref().map(dispatchable))
}

/// Ends a zombie's try as failed (retryable per the task's retry rules).
pub async fn fail_zombie(
    db: &impl GenericClient,
    zombie: &Zombie,
    reason: &str,
    retry_delay_ms: u64,
) -> Result<Option<TaskState>, DbError> {
    let outcome = TryOutcome {
        state: TaskState::Failed,
        exit_code: None,
        failure_reason: Some(reason),
        retry_delay_ms,
        retryable: true,
    };
    end_try(db, zombie.id, zombie.try_number, &["running"], &outcome).await
}

/// How one try ended, as a worker (or the dead-letter handler) reports it.
#[derive(Debug, Clone)]
pub struct TryOutcome<'a> {
    /// `success` or `failed`; a failure with tries left is recorded as `up_for_retry`.
    pub state: TaskState,
    /// Exit code of the task's process.
    pub exit_code: Option<i32>,
    /// Why it failed, for people (`exit code 3`, `timed out after 2s`).
    pub failure_reason: Option<&'a str>,
    /// Wait before the next try, if there is one.
    pub retry_delay_ms: u64,
    /// Whether a failure may be retried at all.
    pub retryable: bool,
}

impl<'a> TryOutcome<'a> {
    /// A failure no retry can mend (broken templates, a message the broker gave up on).
    pub fn failed_without_retry(reason: &'a str) -> Self {
        TryOutcome {
            state: TaskState::Failed,
            exit_code: None,
            failure_reason: Some(reason),
            retry_delay_ms: 0,
            retryable: false,
        }
    }
}

/// Records the end of a try whose state is one of `expected`, with its own
/// history row, and notifies the schedulers (on commit). Returns the state
/// recorded (`up_for_retry` when a failed try has tries left), or `None`
/// when the try was no longer in an expected state.
async fn end_try(
    db: &impl GenericClient,
    id: Uuid,
    try_number: i32,
    expected: &[&str],
    outcome: &TryOutcome<'_>,
) -> Result<Option<TaskState>, DbError> {
    let delay_ms = outcome.retry_delay_ms as f64;
    let statement = db
        .prepare_cached(concat!(
            "WITH done AS ( \
                 UPDATE task_instances SET \
                     state = CASE WHEN $3 = 'failed' AND $7 AND try_number <= max_tries THEN 'up_for_retry' ELSE $3 END, \
                     next_retry_at = CASE WHEN $3 = 'failed' AND $7 AND try_number <= max_tries \
                                          THEN now() + $6 * interval '1 millisecond' END, \
                     exit_code = $4, failure_reason = $5, end_date = now(), updated_at = now() \
                 WHERE id = $1 AND try_number = $2 AND state = ANY($8) \
                 RETURNING id, run_pk, task_id, state, try_number, hostname, exit_code, failure_reason, queued_at, start_date, end_date), ",
            record_try_history!(),
            " SELECT run_pk, state, pg_notify($9, run_pk::text || ':' || task_id) FROM done"
        ),
        )
        .await?;
    let row = db
        .query_opt(
            &statement,
            &[
                &id,
                &try_number,
                &outcome.state.as_str(),
                &outcome.exit_code,
                &outcome.failure_reason,
                &delay_ms,
                &outcome.retryable,
                &expected,
                &TASK_FINISHED_CHANNEL,
            ],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let state: String = row.get(1);
    Ok(TaskState::parse(&state))
}

/// Task ids named by one NOTIFY payload: at 250 characters each (the longest
/// task id) it stays under PostgreSQL's 8,000-byte payload limit.
const TASKS_PER_NOTIFY: i64 = 25;

/// A worker's hot path in one statement, outside any transaction: claims
/// committed `queued` tries (`queued → running`) and records successful
/// tries (with their history rows and one NOTIFY per run naming its tasks,
/// `run_pk:task,task,…`); returns the ids of both kinds it applied. A claim
/// it leaves alone goes through [`claim`] (a retry, a redelivery, or a
/// dispatch whose transaction has not committed yet); a success it leaves
/// alone was no longer running on this worker.
pub async fn claim_and_finish_many(
    db: &impl GenericClient,
    claims: &[(Uuid, i32)],
    successes: &[(Uuid, i32, Option<i32>)],
    hostname: &str,
) -> Result<Vec<Uuid>, DbError> {
    let claim_ids: Vec<Uuid> = claims.iter().map(|t| t.0).collect();
    let claim_tries: Vec<i32> = claims.iter().map(|t| t.1).collect();
    let ids: Vec<Uuid> = successes.iter().map(|t| t.0).collect();
    let tries: Vec<i32> = successes.iter().map(|t| t.1).collect();
    let codes: Vec<Option<i32>> = successes.iter().map(|t| t.2).collect();
    let pid = i32::try_from(std::process::id()).unwrap_or(0);
    let statement = db
        .prepare_cached(concat!(
            "WITH claimed AS ( \
                 UPDATE task_instances ti SET state = 'running', hostname = $3, pid = $4, start_date = now(), \
                     end_date = NULL, exit_code = NULL, failure_reason = NULL, next_retry_at = NULL, updated_at = now(), \
                     last_heartbeat_at = now() \
                 FROM unnest($1::uuid[], $2::int[]) AS c(id, try_number) \
                 WHERE ti.id = c.id AND ti.try_number = c.try_number AND ti.state = 'queued' RETURNING ti.id), \
             done AS ( \
                 UPDATE task_instances ti SET state = 'success', exit_code = c.exit_code, failure_reason = NULL, \
                     next_retry_at = NULL, end_date = now(), updated_at = now() \
                 FROM unnest($5::uuid[], $6::int[], $7::int[]) AS c(id, try_number, exit_code) \
                 WHERE ti.id = c.id AND ti.try_number = c.try_number AND ti.state = 'running' \
                 RETURNING ti.id, ti.run_pk, ti.task_id, ti.state, ti.try_number, ti.hostname, ti.exit_code, \
                     ti.failure_reason, ti.queued_at, ti.start_date, ti.end_date), ",
            record_try_history!(),
            ", notified AS ( \
                 SELECT pg_notify($8, run_pk::text || ':' || string_agg(DISTINCT task_id, ',')) FROM ( \
                     SELECT run_pk, task_id, (row_number() OVER (PARTITION BY run_pk ORDER BY task_id) - 1) / $9 AS part \
                     FROM done) d \
                 GROUP BY run_pk, part) \
             SELECT id FROM claimed \
             UNION ALL SELECT id FROM done CROSS JOIN (SELECT count(*) FROM notified) n"
        ))
        .await?;
    let rows = db
        .query(
            &statement,
            &[
                &claim_ids,
                &claim_tries,
                &hostname,
                &pid,
                &ids,
                &tries,
                &codes,
                &TASK_FINISHED_CHANNEL,
                &TASKS_PER_NOTIFY,
            ],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Records the outcome of this worker's running try (see [`TryOutcome`]).
pub async fn finish(
    db: &impl GenericClient,
    id: Uuid,
    try_number: i32,
    outcome: &TryOutcome<'_>,
) -> Result<Option<TaskState>, DbError> {
    end_try(db, id, try_number, &["running"], outcome).await
}

/// Fails a try whose message the broker gave up on (delivered more than the
/// delivery limit: its task keeps killing workers). No retry: retrying would
/// loop forever.
pub async fn fail_undeliverable(
    db: &impl GenericClient,
    id: Uuid,
    try_number: i32,
    reason: &str,
) -> Result<bool, DbError> {
    let outcome = TryOutcome::failed_without_retry(reason);
    let current: Option<i32> =
        db.query_opt("SELECT try_number FROM task_instances WHERE id = $1", &[&id]).await?.map(|r| r.get(0));
    // Takeovers after worker deaths move the try number on; the message still names the first.
    let Some(current) = current.filter(|c| *c >= try_number) else { return Ok(false) };
    Ok(end_try(db, id, current, &["queued", "running"], &outcome).await?.is_some())
}

/// One finished try of a task instance.
#[derive(Debug, Clone)]
pub struct TryRow {
    /// The try.
    pub try_number: i32,
    /// Task state right after the try.
    pub state: TaskState,
    /// Worker that ran it.
    pub hostname: Option<String>,
    /// Its exit code.
    pub exit_code: Option<i32>,
    /// Why it failed.
    pub failure_reason: Option<String>,
    /// When it was queued.
    pub queued_at: Option<DateTime<Utc>>,
    /// When it started.
    pub start_date: Option<DateTime<Utc>>,
    /// When it ended.
    pub end_date: DateTime<Utc>,
}

/// The finished tries of a task instance, oldest first.
pub async fn tries(db: &impl GenericClient, id: Uuid) -> Result<Vec<TryRow>, DbError> {
    let rows = db
        .query(
            "SELECT try_number, state, hostname, exit_code, failure_reason, queued_at, start_date, end_date \
             FROM task_instance_tries WHERE ti_id = $1 ORDER BY try_number",
            &[&id],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let state: String = r.get(1);
            Ok(TryRow {
                try_number: r.get(0),
                state: TaskState::parse(&state).ok_or_else(|| DbError::Corrupt(format!("task state `{state}`")))?,
                hostname: r.get(2),
                exit_code: r.get(3),
                failure_reason: r.get(4),
                queued_at: r.get(5),
                start_date: r.get(6),
                end_date: r.get(7),
            })
        })
        .collect()
}

/// Resets finished task instances to `none` so the scheduler runs them again
/// (Airflow's clear): each gets `retries[i]` more tries from its current one.
/// Only finished ones move; returns the ids that did.
pub async fn clear(db: &impl GenericClient, ids: &[Uuid], retries: &[i32]) -> Result<Vec<Uuid>, DbError> {
    let finished: Vec<&str> = crate::state::ALL_TASK_STATES
        .iter()
        .filter(|s| s.is_finished() || **s == TaskState::UpForRetry)
        .map(|s| s.as_str())
        .collect();
    let rows = db
        .query(
            "UPDATE task_instances ti SET state = 'none', max_tries = ti.try_number + c.retries, end_date = NULL, \
                 exit_code = NULL, failure_reason = NULL, next_retry_at = NULL, hostname = NULL, pid = NULL, \
                 start_date = NULL, queued_at = NULL, updated_at = now() \
             FROM unnest($1::uuid[], $2::int[]) AS c(id, retries) \
             WHERE ti.id = c.id AND ti.state = ANY($3) RETURNING ti.id",
            &[&ids, &retries, &finished],
        )
        .await?;
    let cleared: Vec<Uuid> = rows.iter().map(|r| r.get(0)).collect();
    super::xcom::delete_for(db, &cleared).await?;
    Ok(cleared)
}

/// Sets a task instance's state by hand (Airflow's "mark success/failed")
/// where the state machine allows it, and wakes the schedulers. Returns
/// false when the transition is not allowed from its current state.
pub async fn mark(db: &impl GenericClient, id: Uuid, state: TaskState) -> Result<bool, DbError> {
    let row = db
        .query_opt(
            "UPDATE task_instances SET state = $2, updated_at = now(), next_retry_at = NULL, \
                 end_date = CASE WHEN $4 THEN now() ELSE end_date END \
             WHERE id = $1 AND state = ANY($3) RETURNING run_pk",
            &[&id, &state.as_str(), &state.allowed_from_strs(), &state.is_finished()],
        )
        .await?;
    let Some(row) = row else { return Ok(false) };
    let run_pk: i64 = row.get(0);
    db.execute("SELECT pg_notify($1, $2)", &[&TASK_FINISHED_CHANNEL, &run_pk.to_string()]).await?;
    Ok(true)
}

/// One task instance by DAG, run and task.
pub async fn get(
    db: &impl GenericClient,
    dag_id: &str,
    run_id: &str,
    task_id: &str,
    map_index: i32,
) -> Result<Option<TaskInstanceRow>, DbError> {
    let sql = format!(
        "SELECT {TI_COLUMNS} FROM task_instances WHERE dag_id = $1 AND run_id = $2 AND task_id = $3 AND map_index = $4"
    );
    db.query_opt(&sql, &[&dag_id, &run_id, &task_id, &map_index]).await?.as_ref().map(ti_row).transpose()
}
