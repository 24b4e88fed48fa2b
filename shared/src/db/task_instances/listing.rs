//! The API's reads of task instances: one, a run's, and filtered pages
//! across runs and DAGs with their finished tries. Nothing here changes state.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::{
    db::{
        filters::{Conditions, TextMatch, TimeRange},
        DbError, GenericClient,
    },
    state::TaskState,
};

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
    /// When the next try is due, while `up_for_retry`, or a sensor's next poke, while `up_for_reschedule`.
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

const TI_COLUMNS: &str = r#"
id, run_pk, dag_id, run_id, task_id, map_index, operator, queue, state, try_number,
max_tries, hostname, pid, exit_code, failure_reason, next_retry_at, queued_at, start_date, end_date, updated_at,
rendered_fields, pool, pool_slots, priority_weight"#;

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
    /// Any of these DAGs.
    pub dag_ids: Vec<String>,
    /// Any of these run ids.
    pub run_ids: Vec<String>,
    /// Any of these tasks.
    pub task_ids: Vec<String>,
    /// Only the instances of mapped tasks (`map_index` 0 and up).
    pub mapped_only: bool,
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
    c.push_any("ti.dag_id = ANY($?)", &filter.dag_ids);
    c.push_any("ti.run_id = ANY($?)", &filter.run_ids);
    c.push_any("ti.task_id = ANY($?)", &filter.task_ids);
    c.push_opt("ti.map_index >= $?", filter.mapped_only.then_some(0_i32));
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
    let columns: Vec<String> = TI_COLUMNS.split(',').map(|c| format!("ti.{}", c.trim())).collect();
    let select = format!("{}, r.logical_date AS run_logical_date, r.run_after AS run_run_after", columns.join(", "));
    let from = "task_instances ti JOIN dag_runs r ON r.id = ti.run_pk";
    let (rows, total) = conditions(filter).page(db, &select, from, order_by, limit, offset).await?;
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

/// Every instance of one task in a run (one unless the task is mapped), by map index.
pub async fn list_for_task(
    db: &impl GenericClient,
    run_pk: i64,
    task_id: &str,
) -> Result<Vec<TaskInstanceRow>, DbError> {
    let sql = format!("SELECT {TI_COLUMNS} FROM task_instances WHERE run_pk = $1 AND task_id = $2 ORDER BY map_index");
    db.query(&sql, &[&run_pk, &task_id]).await?.iter().map(ti_row).collect()
}

/// How many task instances of a DAG are queued or running, across its runs
/// (what its `max_active_tasks` limits).
pub async fn in_flight_for_dag(db: &impl GenericClient, dag_id: &str) -> Result<i64, DbError> {
    let row = db
        .query_one(
            "SELECT count(*) FROM task_instances WHERE dag_id = $1 AND state IN ('queued', 'running')",
            &[&dag_id],
        )
        .await?;
    Ok(row.get(0))
}

/// Whether this scheduled task instance waits for a live worker of its queue
/// that advertises its custom operator (dispatch leaves it `scheduled` until then).
pub async fn waits_for_operator(db: &impl GenericClient, id: Uuid) -> Result<bool, DbError> {
    let sql =
        concat!("SELECT EXISTS (SELECT 1 FROM task_instances ti WHERE ti.id = $2 AND ", waits_for_operator!(), ")");
    Ok(db.query_one(sql, &[&crate::dag::KNOWN_OPERATORS, &id]).await?.get(0))
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
            r#"
SELECT try_number, state, hostname, exit_code, failure_reason, queued_at, start_date, end_date
FROM task_instance_tries WHERE ti_id = $1 ORDER BY try_number"#,
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

/// A custom operator that scheduled tasks of a queue wait for, because no live
/// worker of the queue advertises it (the rule of
/// [`waiting_for_operator`](super::dispatch::waiting_for_operator)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorWait {
    /// The operator no live worker of `queue` has.
    pub operator: String,
    /// The queue whose workers lack it.
    pub queue: String,
    /// How many scheduled task instances wait for it.
    pub tasks: i64,
}

/// What scheduled tasks wait for: each (operator, queue) that no live worker serves, with its task count.
pub async fn operator_waits(db: &impl GenericClient) -> Result<Vec<OperatorWait>, DbError> {
    let rows = db
        .query(
            concat!(
                "SELECT ti.operator, ti.queue, count(*) FROM task_instances ti\nWHERE ",
                waits_for_operator!(),
                "\nGROUP BY ti.operator, ti.queue ORDER BY ti.operator, ti.queue LIMIT 100"
            ),
            &[&crate::dag::KNOWN_OPERATORS],
        )
        .await?;
    Ok(rows.iter().map(|r| OperatorWait { operator: r.get(0), queue: r.get(1), tasks: r.get(2) }).collect())
}
