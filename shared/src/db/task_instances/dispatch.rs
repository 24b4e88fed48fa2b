//! The scheduler's dispatch: take `scheduled` task instances that fit their
//! pools and DAGs' `max_active_tasks`, move them `scheduled → queued` with
//! their next try number ([`TaskTransition::Dispatch`]) inside the
//! transaction that publishes them, and what their messages need.
//!
//! Invariant: the transaction commits only after RabbitMQ confirmed every
//! message; a worker's claim waits on these row locks, so a try is never run
//! before it is recorded as queued. The statement keeps its `'scheduled'`
//! literals (the `task_instances_to_dispatch*` and `task_instances_in_flight`
//! partial indexes need them); the
//! compare-and-set tests check it against [`TaskTransition::Dispatch`].

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use super::try_end::{end_try, TryOutcome};
use crate::{
    dag::KNOWN_OPERATORS,
    db::{signals::AdvisoryLock, DbError, GenericClient},
    state::TaskTransition,
};

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

/// Whether any task instance waits in `scheduled`: one probe of the partial
/// dispatch index, so a wake-up with nothing to dispatch skips the slot
/// accounting of [`take_for_dispatch`], which reads every in-flight task instance.
pub async fn any_scheduled(db: &impl GenericClient) -> Result<bool, DbError> {
    let statement = db.prepare_cached("SELECT EXISTS (SELECT 1 FROM task_instances WHERE state = 'scheduled')").await?;
    Ok(db.query_one(&statement, &[]).await?.get(0))
}

/// `$1` the most task instances to take, `$2` the built-in operator names (a
/// custom operator is taken only when a live worker of its queue advertises it,
/// see [`waiting_for_operator`]). Counts what is in flight per pool
/// and per DAG, picks candidates per (DAG, pool) in priority order, keeps
/// those that fit, locks them and moves them to `queued`.
const TAKE_FOR_DISPATCH: &str = r#"
WITH advertising AS (
    SELECT queues, operators FROM live_workers
),
in_flight AS (
    SELECT pool, dag_id, pool_slots FROM task_instances WHERE state IN ('queued', 'running')
),
pool_free AS (
    SELECT p.name, p.slots - coalesce((SELECT sum(f.pool_slots) FROM in_flight f WHERE f.pool = p.name), 0) AS free
    FROM pools p
),
dag_free AS (
    SELECT d.dag_id, d.max_active_tasks - (SELECT count(*) FROM in_flight f WHERE f.dag_id = d.dag_id) AS free
    FROM dags d
    WHERE d.dag_id IN (SELECT r.dag_id FROM dag_runs r WHERE r.state IN ('queued', 'running'))
),
candidates AS (
    SELECT c.id, c.dag_id, c.pool, c.pool_slots, c.priority_weight, c.run_pk
    FROM dag_free d CROSS JOIN pool_free p CROSS JOIN LATERAL (
        SELECT ti.id, ti.dag_id, ti.pool, ti.pool_slots, ti.priority_weight, ti.run_pk FROM task_instances ti
        WHERE ti.state = 'scheduled' AND ti.dag_id = d.dag_id AND ti.pool = p.name
            AND (ti.operator = ANY($2) OR EXISTS (SELECT 1 FROM advertising a
                 WHERE ti.queue = ANY(a.queues) AND a.operators @> jsonb_build_array(jsonb_build_object('name', ti.operator))))
        ORDER BY ti.priority_weight DESC, ti.run_pk, ti.id
        LIMIT greatest(least(d.free, p.free, $1), 0)
    ) c
    WHERE d.free > 0 AND p.free > 0
),
within_dag AS (
    SELECT c.*, row_number() OVER (
        PARTITION BY c.dag_id ORDER BY c.priority_weight DESC, c.run_pk, c.id) AS dag_rank
    FROM candidates c
),
within_pool AS (
    SELECT w.*, sum(w.pool_slots) OVER (
        PARTITION BY w.pool ORDER BY w.priority_weight DESC, w.run_pk, w.id
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS pool_used
    FROM within_dag w JOIN dag_free d ON d.dag_id = w.dag_id WHERE w.dag_rank <= d.free
),
picked AS (
    SELECT ti.id FROM within_pool w JOIN pool_free p ON p.name = w.pool JOIN task_instances ti ON ti.id = w.id
    WHERE w.pool_used <= p.free AND ti.state = 'scheduled'
    ORDER BY w.priority_weight DESC, w.run_pk, w.id LIMIT $1
    FOR UPDATE OF ti SKIP LOCKED
)
UPDATE task_instances ti SET state = 'queued', try_number = ti.try_number + 1, queued_at = now(),
    updated_at = now(), hostname = NULL, pid = NULL, exit_code = NULL, start_date = NULL, end_date = NULL
FROM picked, dag_runs r
WHERE ti.id = picked.id AND r.id = ti.run_pk AND ti.state = 'scheduled'
RETURNING ti.id, ti.run_pk, ti.dag_id, ti.run_id, ti.task_id, ti.map_index, ti.try_number,
    r.logical_date, r.dag_version_id, r.data_interval_start, r.data_interval_end, r.run_after, r.conf,
    NULL::jsonb, ti.map_item"#;

/// Takes up to `limit` scheduled task instances that fit, and moves them to
/// `queued` with their next try number ([`TaskTransition::Dispatch`]). Run
/// inside a transaction that commits only after the broker confirmed.
///
/// Nothing is taken beyond the free slots of each pool (its slots minus the
/// `pool_slots` of its queued and running task instances) or beyond the
/// `max_active_tasks` of each DAG (minus its queued and running ones). Among
/// the candidates, higher `priority_weight` goes first, then older runs; in
/// each pool they are taken in that order until one does not fit, so a task
/// needing many slots is not starved by smaller ones behind it. Task
/// instances whose pool does not exist stay `scheduled` (see
/// [`crate::db::pools::problems`]). Dispatch holds a transaction-scoped advisory
/// lock, taken in its own statement so the counts that follow see every
/// earlier dispatch's commit.
pub async fn take_for_dispatch(db: &impl GenericClient, limit: i64) -> Result<Vec<Dispatchable>, DbError> {
    AdvisoryLock::Dispatch.lock_for_transaction(db).await?;
    let statement = db.prepare_cached(TAKE_FOR_DISPATCH).await?;
    let rows = db.query(&statement, &[&limit, &KNOWN_OPERATORS]).await?;
    Ok(rows.iter().map(dispatchable).collect())
}

/// A scheduled task whose custom operator no live worker of its queue advertises.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitingForOperator {
    /// The task instance.
    pub id: Uuid,
    /// Its DAG.
    pub dag_id: String,
    /// Its run.
    pub run_id: String,
    /// The task.
    pub task_id: String,
    /// The custom operator's name.
    pub operator: String,
    /// The queue it is routed to.
    pub queue: String,
}

/// Scheduled task instances (at most 100) that [`take_for_dispatch`] leaves
/// `scheduled` because no worker that heartbeated in the last minute and
/// consumes their queue advertises their custom operator.
pub async fn waiting_for_operator(db: &impl GenericClient) -> Result<Vec<WaitingForOperator>, DbError> {
    let rows = db
        .query(
            concat!(
                "SELECT ti.id, ti.dag_id, ti.run_id, ti.task_id, ti.operator, ti.queue FROM task_instances ti\nWHERE ",
                waits_for_operator!(),
                "\nORDER BY ti.id LIMIT 100"
            ),
            &[&KNOWN_OPERATORS],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| WaitingForOperator {
            id: r.get(0),
            dag_id: r.get(1),
            run_id: r.get(2),
            task_id: r.get(3),
            operator: r.get(4),
            queue: r.get(5),
        })
        .collect())
}

/// What the scheduler needs to publish the next try of a task instance.
pub async fn dispatch_info(db: &impl GenericClient, id: Uuid) -> Result<Option<Dispatchable>, DbError> {
    let row = db
        .query_opt(
            r#"
SELECT ti.id, ti.run_pk, ti.dag_id, ti.run_id, ti.task_id, ti.map_index, ti.try_number + 1,
    r.logical_date, r.dag_version_id, r.data_interval_start, r.data_interval_end, r.run_after, r.conf,
    ti.rendered_fields, ti.map_item
FROM task_instances ti JOIN dag_runs r ON r.id = ti.run_pk WHERE ti.id = $1"#,
            &[&id],
        )
        .await?;
    Ok(row.as_ref().map(dispatchable))
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
        r#"
UPDATE task_instances ti SET rendered_fields = f.fields
FROM unnest($1::uuid[], $2::jsonb[]) AS f(id, fields)
WHERE ti.id = f.id"#,
        &[&ids, &fields],
    )
    .await?;
    Ok(())
}

/// Fails a try taken for dispatch whose templates could not be rendered
/// ([`TaskTransition::FailUnrenderable`]); no retry, since the same
/// templates would fail the same way.
pub async fn fail_unrenderable(
    db: &impl GenericClient,
    id: Uuid,
    try_number: i32,
    reason: &str,
) -> Result<bool, DbError> {
    let outcome = TryOutcome::failed_without_retry(reason);
    Ok(end_try(db, id, try_number, TaskTransition::FailUnrenderable, &outcome).await?.is_some())
}
