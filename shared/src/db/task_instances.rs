//! Queries on `task_instances`. Every state change is a compare-and-set
//! built from [`TaskState::allowed_from`], keyed on the try number where a
//! worker is involved, so a stale or duplicate actor changes nothing.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use super::{DbError, GenericClient, TASK_FINISHED_CHANNEL};
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
    /// When the current try was queued.
    pub queued_at: Option<DateTime<Utc>>,
    /// When the current try started.
    pub start_date: Option<DateTime<Utc>>,
    /// When the current try ended.
    pub end_date: Option<DateTime<Utc>>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

const TI_COLUMNS: &str = "id, run_pk, dag_id, run_id, task_id, map_index, operator, queue, state, try_number, \
     max_tries, hostname, pid, exit_code, queued_at, start_date, end_date, updated_at";

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
        queued_at: row.get("queued_at"),
        start_date: row.get("start_date"),
        end_date: row.get("end_date"),
        updated_at: row.get("updated_at"),
    })
}

/// Creates one task instance per task of a run, in state `none`, in one statement.
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
    Ok(db
        .execute(
            "INSERT INTO task_instances (run_pk, dag_id, run_id, task_id, operator, queue, max_tries) \
             SELECT $1, $2, $3, t.task_id, t.operator, t.queue, t.max_tries \
             FROM unnest($4::text[], $5::text[], $6::text[], $7::int[]) AS t(task_id, operator, queue, max_tries) \
             ON CONFLICT (run_pk, task_id, map_index) DO NOTHING",
            &[&run_pk, &dag_id, &run_id, &task_ids, &operators, &queues, &max_tries],
        )
        .await?)
}

/// Every task instance of a run, for the API.
pub async fn list_for_run(db: &impl GenericClient, run_pk: i64) -> Result<Vec<TaskInstanceRow>, DbError> {
    let sql = format!("SELECT {TI_COLUMNS} FROM task_instances WHERE run_pk = $1 ORDER BY start_date NULLS LAST, task_id, map_index");
    db.query(&sql, &[&run_pk]).await?.iter().map(ti_row).collect()
}

/// `(id, task_id, state)` of every task instance of a run, for scheduling decisions.
pub async fn states_for_run(db: &impl GenericClient, run_pk: i64) -> Result<Vec<(Uuid, String, TaskState)>, DbError> {
    let rows = db.query("SELECT id, task_id, state FROM task_instances WHERE run_pk = $1", &[&run_pk]).await?;
    rows.iter()
        .map(|r| {
            let state: String = r.get(2);
            let state = TaskState::parse(&state).ok_or_else(|| DbError::Corrupt(format!("task state `{state}`")))?;
            Ok((r.get(0), r.get(1), state))
        })
        .collect()
}

/// Moves the given task instances to `next` where the transition is allowed; returns how many moved.
pub async fn transition_many(db: &impl GenericClient, ids: &[Uuid], next: TaskState) -> Result<u64, DbError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let finished = next.is_finished();
    Ok(db
        .execute(
            "UPDATE task_instances SET state = $2, updated_at = now(), \
             end_date = CASE WHEN $4 THEN now() ELSE end_date END \
             WHERE id = ANY($1) AND state = ANY($3)",
            &[&ids, &next.as_str(), &next.allowed_from_strs(), &finished],
        )
        .await?)
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
}

/// Locks up to `limit` scheduled task instances (skipping ones another
/// scheduler holds) and moves them to `queued` with their next try number.
/// Run inside a transaction that commits only after the broker confirmed.
pub async fn take_for_dispatch(db: &impl GenericClient, limit: i64) -> Result<Vec<Dispatchable>, DbError> {
    let rows = db
        .query(
            "WITH picked AS ( \
                 SELECT ti.id FROM task_instances ti WHERE ti.state = 'scheduled' \
                 ORDER BY ti.run_pk LIMIT $1 FOR UPDATE SKIP LOCKED) \
             UPDATE task_instances ti SET state = 'queued', try_number = ti.try_number + 1, queued_at = now(), \
                 updated_at = now(), hostname = NULL, pid = NULL, exit_code = NULL, start_date = NULL, end_date = NULL \
             FROM picked, dag_runs r \
             WHERE ti.id = picked.id AND r.id = ti.run_pk AND ti.state = 'scheduled' \
             RETURNING ti.id, ti.run_pk, ti.dag_id, ti.run_id, ti.task_id, ti.map_index, ti.try_number, \
                 r.logical_date, r.dag_version_id",
            &[&limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Dispatchable {
            id: r.get(0),
            run_pk: r.get(1),
            dag_id: r.get(2),
            run_id: r.get(3),
            task_id: r.get(4),
            map_index: r.get(5),
            next_try: r.get(6),
            logical_date: r.get(7),
            dag_version_id: r.get(8),
        })
        .collect())
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
    /// No such task instance.
    Missing,
}

/// Claims try `try_number` of a task instance for a worker (`queued → running`).
///
/// Run inside a transaction. The row is locked first: if the scheduler that
/// published this try has not committed yet, the lock waits for that commit
/// and then sees its result, so a fast worker never mistakes a try that is
/// being dispatched for a stale one.
pub async fn claim(db: &impl GenericClient, id: Uuid, try_number: i32, hostname: &str) -> Result<Claim, DbError> {
    let Some(row) = db.query_opt("SELECT state, try_number FROM task_instances WHERE id = $1 FOR UPDATE", &[&id]).await? else {
        return Ok(Claim::Missing);
    };
    let state: String = row.get(0);
    let state = TaskState::parse(&state).ok_or_else(|| DbError::Corrupt(format!("task state `{state}`")))?;
    let current: i32 = row.get(1);
    if current != try_number || !state.can_become(TaskState::Running) {
        return Ok(Claim::NotClaimable { state, try_number: current });
    }
    let pid = i32::try_from(std::process::id()).unwrap_or(0);
    db.execute(
        "UPDATE task_instances SET state = 'running', hostname = $2, pid = $3, start_date = now(), updated_at = now() \
         WHERE id = $1",
        &[&id, &hostname, &pid],
    )
    .await?;
    Ok(Claim::Claimed)
}

/// Records the outcome of a running try and notifies the schedulers (on
/// commit); false when the try was no longer ours to finish.
pub async fn finish(
    db: &impl GenericClient,
    id: Uuid,
    try_number: i32,
    state: TaskState,
    exit_code: Option<i32>,
) -> Result<bool, DbError> {
    let row = db
        .query_opt(
            "UPDATE task_instances SET state = $3, exit_code = $4, end_date = now(), updated_at = now() \
             WHERE id = $1 AND try_number = $2 AND state = 'running' RETURNING run_pk",
            &[&id, &try_number, &state.as_str(), &exit_code],
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
