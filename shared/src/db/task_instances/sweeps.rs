//! The scheduler's sweeps over tries whose worker or message is gone: zombies
//! (running, heartbeat lapsed), tries queued for longer than the queued
//! timeout (message lost, or no worker on the queue), pending retries whose
//! delayed message never arrived, and tries whose message the broker
//! dead-lettered at the delivery limit.
//!
//! All end the try through [`end_try`], a compare-and-set on the try
//! number: if the worker was only slow and finishes first, the sweep
//! changes nothing; if the sweep wins, the woken worker's late result is dropped.

use uuid::Uuid;

use super::try_end::{end_try, TryOutcome};
use crate::{
    db::{DbError, GenericClient},
    state::{TaskState, TaskTransition},
};

/// A try the scheduler ends because its worker or its message is gone.
#[derive(Debug, Clone)]
pub struct LostTry {
    /// Task instance id.
    pub id: Uuid,
    /// The try that was running or queued.
    pub try_number: i32,
    /// The worker it ran on (none for a queued try).
    pub hostname: Option<String>,
}

/// Running tries whose last heartbeat is older than $1 seconds (up to $2).
/// Read through `task_instances_in_flight` (queued and running tries), which the predicate implies.
const ZOMBIES: &str = r#"
SELECT id, try_number, hostname FROM task_instances
WHERE state = 'running' AND last_heartbeat_at < now() - $1 * interval '1 second'
ORDER BY last_heartbeat_at LIMIT $2
FOR UPDATE SKIP LOCKED"#;

/// Tries of running runs queued for longer than $1 seconds (up to $2).
/// Reached through the runs (`task_instances_live`), so no index serves this rare sweep alone.
const QUEUED_TOO_LONG: &str = r#"
SELECT ti.id, ti.try_number, ti.hostname FROM task_instances ti
JOIN dag_runs r ON r.id = ti.run_pk AND r.state = 'running'
WHERE ti.state = 'queued' AND ti.queued_at < now() - $1 * interval '1 second'
ORDER BY ti.queued_at LIMIT $2
FOR UPDATE OF ti SKIP LOCKED"#;

/// Pending retries of running runs due more than $1 seconds ago (up to $2); reached through the runs too.
const OVERDUE_RETRIES: &str = r#"
SELECT ti.id, ti.try_number, ti.hostname FROM task_instances ti
JOIN dag_runs r ON r.id = ti.run_pk AND r.state = 'running'
WHERE ti.state = 'up_for_retry' AND ti.next_retry_at < now() - $1 * interval '1 second'
ORDER BY ti.next_retry_at LIMIT $2
FOR UPDATE OF ti SKIP LOCKED"#;

/// Running tries (up to `limit`) whose last heartbeat is older than `threshold`, locked for handling.
pub async fn lock_zombies(
    db: &impl GenericClient,
    threshold: std::time::Duration,
    limit: i64,
) -> Result<Vec<LostTry>, DbError> {
    lock_lost(db, ZOMBIES, threshold, limit).await
}

/// Tries (up to `limit`) of running runs queued for longer than `timeout`, locked for handling.
pub async fn lock_queued_too_long(
    db: &impl GenericClient,
    timeout: std::time::Duration,
    limit: i64,
) -> Result<Vec<LostTry>, DbError> {
    lock_lost(db, QUEUED_TOO_LONG, timeout, limit).await
}

/// Pending retries (up to `limit`) of running runs whose retry was due more than
/// `timeout` ago, locked for handling: their delayed message never reached a
/// worker (lost with a broker's data, or with a delay queue's leader that
/// died while dead-lettering it). `try_number` is the try that failed.
pub async fn lock_overdue_retries(
    db: &impl GenericClient,
    timeout: std::time::Duration,
    limit: i64,
) -> Result<Vec<LostTry>, DbError> {
    lock_lost(db, OVERDUE_RETRIES, timeout, limit).await
}

/// Runs one of the lock queries above with its age and limit.
async fn lock_lost(
    db: &impl GenericClient,
    query: &str,
    older_than: std::time::Duration,
    limit: i64,
) -> Result<Vec<LostTry>, DbError> {
    let rows = db.query(query, &[&older_than.as_secs_f64(), &limit]).await?;
    Ok(rows.iter().map(lost_try).collect())
}

/// Marks an overdue retry as published again now, so the next sweep waits
/// another timeout for it; false when the try moved on meanwhile. The state
/// does not change: the retry is still pending until a worker claims it.
pub async fn retry_republished(db: &impl GenericClient, overdue: &LostTry) -> Result<bool, DbError> {
    let updated = db
        .execute(
            "UPDATE task_instances SET next_retry_at = now(), updated_at = now() \
             WHERE id = $1 AND state = 'up_for_retry' AND try_number = $2",
            &[&overdue.id, &overdue.try_number],
        )
        .await?;
    Ok(updated == 1)
}

fn lost_try(row: &tokio_postgres::Row) -> LostTry {
    LostTry { id: row.get(0), try_number: row.get(1), hostname: row.get(2) }
}

/// Ends a zombie's try as failed ([`TaskTransition::FailZombie`]), retried by the task's retry rules.
pub async fn fail_zombie(
    db: &impl GenericClient,
    zombie: &LostTry,
    reason: &str,
    retry_delay_ms: u64,
) -> Result<Option<TaskState>, DbError> {
    fail_lost(db, zombie, TaskTransition::FailZombie, reason, retry_delay_ms).await
}

/// Ends a try queued for too long as failed ([`TaskTransition::FailQueuedTimeout`]),
/// retried by the task's retry rules; its message, if it ever arrives, finds the try gone.
pub async fn fail_queued_timeout(
    db: &impl GenericClient,
    queued: &LostTry,
    reason: &str,
    retry_delay_ms: u64,
) -> Result<Option<TaskState>, DbError> {
    fail_lost(db, queued, TaskTransition::FailQueuedTimeout, reason, retry_delay_ms).await
}

async fn fail_lost(
    db: &impl GenericClient,
    lost: &LostTry,
    transition: TaskTransition,
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
    end_try(db, lost.id, lost.try_number, transition, &outcome).await
}

/// Whether the task instance a dead-lettered message names still exists.
pub async fn exists(db: &impl GenericClient, id: Uuid) -> Result<bool, DbError> {
    Ok(db.query_opt("SELECT 1 FROM task_instances WHERE id = $1", &[&id]).await?.is_some())
}

/// Fails a try whose message the broker gave up on (delivered more than the
/// delivery limit: its task keeps killing workers), by
/// [`TaskTransition::FailUndeliverable`]. No retry: retrying would loop forever.
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
    Ok(end_try(db, id, current, TaskTransition::FailUndeliverable, &outcome).await?.is_some())
}
