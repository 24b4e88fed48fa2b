//! Ending a try, whoever ends it: the worker ([`TaskTransition::Finish`]),
//! the zombie sweep, the dead-letter handler and dispatch (the `Fail…`
//! transitions). One statement records the outcome, writes the try's own
//! history row and notifies the schedulers on commit.

use uuid::Uuid;

use super::state_of;
use crate::{
    db::{signals::TASK_FINISHED_CHANNEL, DbError, GenericClient},
    state::{TaskState, TaskTransition},
};

/// The CTE that copies the tries in `done` into `task_instance_tries`, each
/// try's own history row; shared by every statement that ends a try.
macro_rules! record_try_history {
    () => {
        r#"
history AS (
    INSERT INTO task_instance_tries
        (ti_id, try_number, state, hostname, exit_code, failure_reason, queued_at, start_date, end_date)
    SELECT id, try_number, state, hostname, exit_code, failure_reason, queued_at, start_date, end_date FROM done
    ON CONFLICT (ti_id, try_number) DO UPDATE SET state = EXCLUDED.state, exit_code = EXCLUDED.exit_code,
        failure_reason = EXCLUDED.failure_reason, end_date = EXCLUDED.end_date
)"#
    };
}
pub(super) use record_try_history;

/// How one try ended, as a worker (or the scheduler, for it) reports it.
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

/// `$1` id, `$2` try, `$3` `success`|`failed`, `$4` exit code, `$5` failure
/// reason, `$6` retry delay in ms, `$7` retryable, `$8` the transition's
/// `from` states (`hidden_states!`), `$9` the task-finished channel.
const END_TRY: &str = concat!(
    r#"
WITH done AS (
    UPDATE task_instances SET
        state = CASE WHEN $3 = 'failed' AND $7 AND try_number <= max_tries THEN 'up_for_retry' ELSE $3 END,
        next_retry_at = CASE WHEN $3 = 'failed' AND $7 AND try_number <= max_tries
                             THEN now() + $6 * interval '1 millisecond' END,
        exit_code = $4, failure_reason = $5, end_date = now(), updated_at = now()
    WHERE id = $1 AND try_number = $2 AND state = "#,
    hidden_states!("$8"),
    r#"
    RETURNING id, run_pk, task_id, state, try_number, hostname, exit_code, failure_reason,
              queued_at, start_date, end_date
),"#,
    record_try_history!(),
    r#"
SELECT run_pk, state, pg_notify($9, run_pk::text || ':' || task_id) FROM done"#
);

/// Ends try `try_number` by `transition` if the task instance is in one of
/// its `from` states, with the try's history row and a NOTIFY (on commit).
/// Returns the state recorded (`up_for_retry` when a retryable failure has
/// tries left), or `None` when the try was no longer in such a state.
pub async fn end_try(
    db: &impl GenericClient,
    id: Uuid,
    try_number: i32,
    transition: TaskTransition,
    outcome: &TryOutcome<'_>,
) -> Result<Option<TaskState>, DbError> {
    debug_assert!(transition.to().contains(&outcome.state), "{transition:?} cannot end in {}", outcome.state);
    let delay_ms = outcome.retry_delay_ms as f64;
    let statement = db.prepare_cached(END_TRY).await?;
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
                &transition.from_strs(),
                &TASK_FINISHED_CHANNEL,
            ],
        )
        .await?;
    row.map(|row| state_of(row.get(1))).transpose()
}
