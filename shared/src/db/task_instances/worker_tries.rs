//! The worker's compare-and-set statements: claim a try, record its end,
//! take over a dead worker's try, hand a try back, heartbeat.
//!
//! Invariants: a try runs at most once (the claim is keyed on the try number
//! under a row lock, so a duplicate or stale delivery finds it taken); a
//! worker acks a delivery only after the statement that ended its try
//! committed; a late result of a try that was meanwhile ended by someone
//! else (zombie sweep, mark by hand) changes nothing.

use uuid::Uuid;

use super::{
    state_of,
    try_end::{end_try, record_try_history, TryOutcome},
};
use crate::{
    db::{
        signals::{TASKS_PER_NOTIFY, TASK_FINISHED_CHANNEL},
        DbError, GenericClient,
    },
    state::{TaskState, TaskTransition},
};

/// What a worker found when it tried to claim a try.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The try is ours: `queued → running` (or `up_for_retry → running`) succeeded.
    Claimed,
    /// The task instance exists but this try is not claimable (already run, superseded, cleared).
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

/// The transition that claims try `try_number` of a task instance that is
/// `state` at try `current`, if one does: [`TaskTransition::Claim`] of the
/// dispatched try, [`TaskTransition::ClaimReschedule`] of a sensor's next poke
/// (the same try), or [`TaskTransition::ClaimRetry`] of the try after the
/// current one, which a failed try published to its delay queue.
pub fn claiming_transition(state: TaskState, current: i32, try_number: i32) -> Option<TaskTransition> {
    if TaskTransition::Claim.moves(state) && current == try_number {
        Some(TaskTransition::Claim)
    } else if TaskTransition::ClaimReschedule.moves(state) && current == try_number {
        Some(TaskTransition::ClaimReschedule)
    } else if TaskTransition::ClaimRetry.moves(state) && current + 1 == try_number {
        Some(TaskTransition::ClaimRetry)
    } else {
        None
    }
}

/// Claims try `try_number` of a task instance for a worker (see [`claiming_transition`]).
/// A sensor's next poke keeps the try's `start_date` and `queued_at`: its
/// `timeout` and the UI's durations count from the first poke.
///
/// Run inside a transaction. The row is locked first: if the scheduler that
/// published this try has not committed yet, the lock waits for that commit
/// and then sees its result, so a fast worker never mistakes a try that is
/// being dispatched for a stale one.
pub async fn claim(db: &impl GenericClient, id: Uuid, try_number: i32, hostname: &str) -> Result<Claim, DbError> {
    let Some(row) = db
        .query_opt(
            r#"
SELECT state, try_number, hostname,
       extract(epoch FROM now() - coalesce(last_heartbeat_at, start_date, now()))::float8
FROM task_instances WHERE id = $1 FOR UPDATE"#,
            &[&id],
        )
        .await?
    else {
        return Ok(Claim::Missing);
    };
    let state = state_of(row.get(0))?;
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
    let Some(transition) = claiming_transition(state, current, try_number) else {
        return Ok(Claim::NotClaimable { state, try_number: current });
    };
    let pid = i32::try_from(std::process::id()).unwrap_or(0);
    db.execute(
        r#"
UPDATE task_instances SET state = $6, try_number = $2, hostname = $3, pid = $4,
    start_date = CASE WHEN state = 'up_for_reschedule' THEN coalesce(start_date, now()) ELSE now() END,
    end_date = NULL, exit_code = NULL, failure_reason = NULL, next_retry_at = NULL, updated_at = now(),
    last_heartbeat_at = now(),
    queued_at = CASE WHEN state = 'up_for_retry' THEN now() ELSE queued_at END
WHERE id = $1 AND state = ANY($5)"#,
        &[&id, &try_number, &hostname, &pid, &transition.from_strs(), &transition.target().as_str()],
    )
    .await?;
    Ok(Claim::Claimed)
}

/// `$1`/`$2` ids and tries to claim, `$3` hostname, `$4` pid, `$5`/`$6`/`$7`
/// ids, tries and exit codes of successes, `$8` the task-finished channel,
/// `$9` tasks per NOTIFY, `$10` [`TaskTransition::Claim`]'s `from`, `$11`
/// [`TaskTransition::Finish`]'s `from`, both through `hidden_states!`.
const CLAIM_AND_FINISH_MANY: &str = concat!(
    r#"
WITH claimed AS (
    UPDATE task_instances ti SET state = 'running', hostname = $3, pid = $4, start_date = now(),
        end_date = NULL, exit_code = NULL, failure_reason = NULL, next_retry_at = NULL, updated_at = now(),
        last_heartbeat_at = now()
    FROM unnest($1::uuid[], $2::int[]) AS c(id, try_number)
    WHERE ti.id = c.id AND ti.try_number = c.try_number AND ti.state = "#,
    hidden_states!("$10"),
    r#"
    RETURNING ti.id
),
done AS (
    UPDATE task_instances ti SET state = 'success', exit_code = c.exit_code, failure_reason = NULL,
        next_retry_at = NULL, end_date = now(), updated_at = now()
    FROM unnest($5::uuid[], $6::int[], $7::int[]) AS c(id, try_number, exit_code)
    WHERE ti.id = c.id AND ti.try_number = c.try_number AND ti.state = "#,
    hidden_states!("$11"),
    r#"
    RETURNING ti.id, ti.run_pk, ti.task_id, ti.state, ti.try_number, ti.hostname, ti.exit_code,
              ti.failure_reason, ti.queued_at, ti.start_date, ti.end_date
),"#,
    record_try_history!(),
    r#",
notified AS (
    SELECT pg_notify($8, run_pk::text || ':' || string_agg(DISTINCT task_id, ','))
    FROM (SELECT run_pk, task_id,
                 (row_number() OVER (PARTITION BY run_pk ORDER BY task_id) - 1) / $9 AS part
          FROM done) d
    GROUP BY run_pk, part
)
SELECT id FROM claimed
UNION ALL SELECT id FROM done CROSS JOIN (SELECT count(*) FROM notified) n"#
);

/// A worker's hot path in one statement, outside any transaction: claims
/// committed `queued` tries ([`TaskTransition::Claim`]) and records
/// successful tries ([`TaskTransition::Finish`], with their history rows
/// and one NOTIFY per run naming its tasks); returns the ids of both kinds
/// it applied. A claim it leaves alone goes through [`claim`] (a retry, a
/// redelivery, or a dispatch whose transaction has not committed yet); a
/// success it leaves alone was no longer running on this worker.
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
    let statement = db.prepare_cached(CLAIM_AND_FINISH_MANY).await?;
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
                &TaskTransition::Claim.from_strs(),
                &TaskTransition::Finish.from_strs(),
            ],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Records the outcome of this worker's running try ([`TaskTransition::Finish`]).
pub async fn finish(
    db: &impl GenericClient,
    id: Uuid,
    try_number: i32,
    outcome: &TryOutcome<'_>,
) -> Result<Option<TaskState>, DbError> {
    end_try(db, id, try_number, TaskTransition::Finish, outcome).await
}

/// Takes over try `try_number`, still `running` on a worker that stopped
/// heartbeating ([`TaskTransition::TakeOver`]): that try is closed as failed
/// (its own history row says why) and the task continues as the next try on
/// `hostname`, with one more try allowed so a dead worker does not use up
/// the task's retries. Returns the new try number, or `None` when the try
/// moved on meanwhile.
pub async fn take_over(
    db: &impl GenericClient,
    id: Uuid,
    try_number: i32,
    hostname: &str,
    reason: &str,
) -> Result<Option<i32>, DbError> {
    let row = db
        .query_opt(
            r#"
WITH old AS (
    SELECT id, try_number, hostname, queued_at, start_date FROM task_instances
    WHERE id = $1 AND try_number = $2 AND state = ANY($6) FOR UPDATE
),
history AS (
    INSERT INTO task_instance_tries (ti_id, try_number, state, hostname, failure_reason, queued_at, start_date)
    SELECT id, try_number, 'failed', hostname, $4, queued_at, start_date FROM old
    ON CONFLICT (ti_id, try_number) DO NOTHING
)
UPDATE task_instances ti SET state = $7, try_number = ti.try_number + 1, max_tries = ti.max_tries + 1,
    hostname = $3, pid = $5, start_date = now(), last_heartbeat_at = now(), updated_at = now()
FROM old WHERE ti.id = old.id
RETURNING ti.try_number"#,
            &[
                &id,
                &try_number,
                &hostname,
                &reason,
                &(i32::try_from(std::process::id()).unwrap_or(0)),
                &TaskTransition::TakeOver.from_strs(),
                &TaskTransition::TakeOver.target().as_str(),
            ],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Gives a running try back to the queue ([`TaskTransition::HandBack`]: its
/// worker is shutting down and could not finish it in time), same try, so
/// the redelivered message can be claimed by another worker.
pub async fn hand_back(db: &impl GenericClient, id: Uuid, try_number: i32) -> Result<bool, DbError> {
    Ok(db
        .execute(
            r#"
UPDATE task_instances SET state = $4, hostname = NULL, pid = NULL, start_date = NULL,
    last_heartbeat_at = NULL, updated_at = now()
WHERE id = $1 AND try_number = $2 AND state = ANY($3)"#,
            &[&id, &try_number, &TaskTransition::HandBack.from_strs(), &TaskTransition::HandBack.target().as_str()],
        )
        .await?
        == 1)
}

/// Parks this worker's running try of a sensor whose condition is not met
/// yet ([`TaskTransition::Reschedule`]): `up_for_reschedule` until its next
/// poke, due in `next_poke_ms` (shown as `next_retry_at`), which the caller
/// publishes to a delay queue in the same transaction. The try stays open: no
/// history row, no NOTIFY (nothing downstream can start). Returns whether
/// the try was still running here.
pub async fn reschedule(
    db: &impl GenericClient,
    id: Uuid,
    try_number: i32,
    next_poke_ms: u64,
) -> Result<bool, DbError> {
    let delay_ms = next_poke_ms as f64;
    Ok(db
        .execute(
            r#"
UPDATE task_instances SET state = $4, next_retry_at = now() + $3 * interval '1 millisecond',
    pid = NULL, last_heartbeat_at = NULL, updated_at = now()
WHERE id = $1 AND try_number = $2 AND state = ANY($5)"#,
            &[
                &id,
                &try_number,
                &delay_ms,
                &TaskTransition::Reschedule.target().as_str(),
                &TaskTransition::Reschedule.from_strs(),
            ],
        )
        .await?
        == 1)
}

/// Whether try `try_number` is still `running` on `hostname`: a worker asks
/// before it starts a try it claimed longer ago than a takeover can happen,
/// since a zombie sweep or a takeover may have ended it meanwhile.
pub async fn still_running_on(
    db: &impl GenericClient,
    id: Uuid,
    try_number: i32,
    hostname: &str,
) -> Result<bool, DbError> {
    Ok(db
        .query_opt(
            "SELECT 1 FROM task_instances WHERE id = $1 AND try_number = $2 AND state = 'running' AND hostname = $3",
            &[&id, &try_number, &hostname],
        )
        .await?
        .is_some())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dispatched_try_and_the_retry_after_a_failed_try_are_claimable_and_nothing_else_is() {
        use TaskState::*;
        assert_eq!(claiming_transition(Queued, 2, 2), Some(TaskTransition::Claim));
        assert_eq!(claiming_transition(UpForRetry, 1, 2), Some(TaskTransition::ClaimRetry));
        assert_eq!(claiming_transition(Queued, 3, 2), Option::None, "a superseded try");
        assert_eq!(claiming_transition(UpForRetry, 1, 1), Option::None, "the failed try itself");
        assert_eq!(claiming_transition(UpForReschedule, 2, 2), Some(TaskTransition::ClaimReschedule));
        assert_eq!(claiming_transition(UpForReschedule, 2, 3), Option::None, "a sensor's poke is never a new try");
        for state in [None, Scheduled, Running, Success, Failed, UpstreamFailed, Skipped, Removed] {
            assert_eq!(claiming_transition(state, 1, 1), Option::None, "{state}");
            assert_eq!(claiming_transition(state, 1, 2), Option::None, "{state}");
        }
    }
}
