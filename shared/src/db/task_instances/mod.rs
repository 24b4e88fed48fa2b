//! The SQL of `task_instances`, one module per caller. One task's trip:
//!
//! 1. [`run_progress`] (scheduler): a run starts and its task instances are
//!    created; trigger rules move them `none → scheduled | skipped |
//!    upstream_failed`; mapped tasks expand; the run's outcome is read.
//! 2. [`dispatch`] (scheduler): `scheduled → queued` with the next try
//!    number, inside the transaction that publishes the messages.
//! 3. [`worker_tries`] (worker): the claim `queued → running` (or
//!    `up_for_retry → running` for a retry back from its delay queue, or
//!    `up_for_reschedule → running` for a sensor's next poke), the try's
//!    end, a sensor's reschedule, takeover of a dead worker's try,
//!    hand-back, heartbeats.
//! 4. [`sweeps`] (scheduler): tries whose worker stopped heartbeating,
//!    tries and retries whose message was lost, and tries whose message the
//!    broker gave up on.
//! 5. [`repair`] (API): clear and mark by hand.
//! 6. [`listing`] (API): reads; no state changes.
//! 7. [`removal`] (API): deleting task instances of finished runs.
//!
//! Every state change is a compare-and-set named after one
//! [`TaskTransition`](crate::state::TaskTransition): the statement's guard
//! is that transition's `from` states (bound with `from_strs()`, or written
//! out where a literal lets a hot statement use its partial index), and
//! `tests/tests/engine/compare_and_set.rs` runs each statement from every
//! state and checks it against the table. A try's end, whoever records it,
//! goes through [`try_end`], which also writes the try's history row.

/// `state = ANY(…)` with the states of the text array parameter `$n`, hidden
/// from the planner.
///
/// `ARRAY(SELECT unnest($n::text[]))` is a value the planner cannot see when
/// it plans: seeing `'queued'` or `'running'` it could serve a statement
/// that names its rows by id from the partial index of live tasks (a whole
/// fan-out's rows) with a hash join instead of probing the primary key per
/// id, and did whenever its estimate of that index was low
/// (docs/planner-statistics.md). Every compare-and-set by id binds its
/// transition's `from` states through this.
macro_rules! hidden_states {
    ($param:literal) => {
        concat!("ANY(ARRAY(SELECT unnest(", $param, "::text[])))")
    };
}

/// The condition on `task_instances ti` of a scheduled task whose custom
/// operator no live worker of its queue advertises ($1: the built-in
/// operators): dispatch leaves it `scheduled`, and the health API lists it.
macro_rules! waits_for_operator {
    () => {
        r#"ti.state = 'scheduled' AND NOT ti.operator = ANY($1) AND NOT EXISTS (
    SELECT 1 FROM live_workers h
    WHERE ti.queue = ANY(h.queues) AND h.operators @> jsonb_build_array(jsonb_build_object('name', ti.operator)))"#
    };
}

pub mod dispatch;
pub mod listing;
pub mod removal;
pub mod repair;
pub mod run_progress;
pub mod sweeps;
pub mod try_end;
pub mod worker_tries;

use super::DbError;
use crate::state::TaskState;

/// A `state` column's value, or the error naming a value gust never writes.
fn state_of(text: &str) -> Result<TaskState, DbError> {
    TaskState::parse(text).ok_or_else(|| DbError::Corrupt(format!("task state `{text}`")))
}
