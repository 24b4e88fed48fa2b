//! Task and run states with Airflow's names, and the one table of allowed
//! task state transitions that every compare-and-set update is built from.

use serde::{Deserialize, Serialize};

/// The state of one task instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Created with its run; waiting for its upstreams (Airflow's "no status").
    None,
    /// Upstreams satisfied; waiting to be dispatched.
    Scheduled,
    /// Published to RabbitMQ; waiting for a worker.
    Queued,
    /// Claimed by a worker.
    Running,
    /// Finished successfully.
    Success,
    /// Finished unsuccessfully with no retries left.
    Failed,
    /// Failed with retries left; its next try waits in the broker.
    UpForRetry,
    /// A sensor in `reschedule` mode between pokes: its next poke waits in the broker, holding no worker slot.
    UpForReschedule,
    /// Not run because an upstream failed.
    UpstreamFailed,
    /// Not run by choice (branching, trigger rules).
    Skipped,
    /// Its task no longer exists in the DAG.
    Removed,
}

/// Every task state, for parsing and tables.
pub const ALL_TASK_STATES: [TaskState; 11] = [
    TaskState::None,
    TaskState::Scheduled,
    TaskState::Queued,
    TaskState::Running,
    TaskState::Success,
    TaskState::Failed,
    TaskState::UpForRetry,
    TaskState::UpForReschedule,
    TaskState::UpstreamFailed,
    TaskState::Skipped,
    TaskState::Removed,
];

impl TaskState {
    /// The database and API spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            TaskState::None => "none",
            TaskState::Scheduled => "scheduled",
            TaskState::Queued => "queued",
            TaskState::Running => "running",
            TaskState::Success => "success",
            TaskState::Failed => "failed",
            TaskState::UpForRetry => "up_for_retry",
            TaskState::UpForReschedule => "up_for_reschedule",
            TaskState::UpstreamFailed => "upstream_failed",
            TaskState::Skipped => "skipped",
            TaskState::Removed => "removed",
        }
    }

    /// Parses the database and API spelling.
    pub fn parse(text: &str) -> Option<Self> {
        ALL_TASK_STATES.into_iter().find(|s| s.as_str() == text)
    }

    /// True when nothing more will happen to this task instance in its run.
    pub const fn is_finished(self) -> bool {
        matches!(
            self,
            TaskState::Success
                | TaskState::Failed
                | TaskState::UpstreamFailed
                | TaskState::Skipped
                | TaskState::Removed
        )
    }

    /// True when this outcome lets a run end in `success`.
    pub const fn counts_as_success(self) -> bool {
        matches!(self, TaskState::Success | TaskState::Skipped | TaskState::Removed)
    }

    /// Every state a task instance may move to `self` from, by any [`TaskTransition`].
    pub fn allowed_from(self) -> Vec<TaskState> {
        ALL_TASK_STATES
            .into_iter()
            .filter(|from| TaskTransition::ALL.iter().any(|t| t.to().contains(&self) && t.from().contains(from)))
            .collect()
    }

    /// Whether some [`TaskTransition`] moves a task instance `self → next`.
    pub fn can_become(self, next: TaskState) -> bool {
        TaskTransition::ALL.iter().any(|t| t.from().contains(&self) && t.to().contains(&next))
    }
}

impl std::fmt::Display for TaskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of one DAG run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Created; waiting for the scheduler (and `max_active_runs`).
    Queued,
    /// Its task instances exist and are being scheduled.
    Running,
    /// Every task finished and no leaf task failed (Airflow's rule: an inner failure handled downstream is fine).
    Success,
    /// Every task finished and a leaf task (one without downstream) failed or was upstream_failed.
    Failed,
}

/// Every run state, for parsing and tables.
pub const ALL_RUN_STATES: [RunState; 4] = [RunState::Queued, RunState::Running, RunState::Success, RunState::Failed];

impl RunState {
    /// The database and API spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Running => "running",
            RunState::Success => "success",
            RunState::Failed => "failed",
        }
    }

    /// Parses the database and API spelling.
    pub fn parse(text: &str) -> Option<Self> {
        ALL_RUN_STATES.into_iter().find(|s| s.as_str() == text)
    }

    /// True for `success` and `failed`.
    pub const fn is_finished(self) -> bool {
        matches!(self, RunState::Success | RunState::Failed)
    }
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every way gust changes a task instance's state: the one transition table.
///
/// Each state-changing statement under `shared/src/db/task_instances/` is
/// named after one of these and either binds [`TaskTransition::from_strs`]
/// as its `state = ANY($n)` guard or is checked against [`TaskTransition::from`]
/// and [`TaskTransition::to`] state by state by the compare-and-set tests
/// (`tests/tests/engine/compare_and_set.rs`). README.md's "Task states" table
/// is this table, and a unit test keeps the two equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskTransition {
    /// A run starts: its task instances are created, `scheduled` when the task has no upstream.
    Create,
    /// The task's trigger rule is met.
    Schedule,
    /// A mapped task's placeholder becomes one instance per element.
    Expand,
    /// A mapped task's list cannot be read (not a list, missing, too long).
    FailUnexpandable,
    /// The trigger rule or a branch decided the task does not run.
    Skip,
    /// An upstream failed and the trigger rule needs it to succeed.
    UpstreamFail,
    /// Published to RabbitMQ with its next try number.
    Dispatch,
    /// Its templates cannot be rendered; no retry could mend that.
    FailUnrenderable,
    /// A worker takes a dispatched try.
    Claim,
    /// A worker takes a retry that comes back from its delay queue (it was never `queued`).
    ClaimRetry,
    /// A worker takes a sensor's next poke back from its delay queue: the same try goes on.
    ClaimReschedule,
    /// The worker records the try's end; a failure with tries left becomes
    /// `up_for_retry`; a custom operator may end it `skipped`.
    Finish,
    /// A sensor in `reschedule` mode is not satisfied yet: it frees its worker
    /// slot and its next poke waits in the broker's delay queues.
    Reschedule,
    /// A worker takes over the try of a worker that stopped heartbeating: that
    /// try is closed as failed in its history and the task goes on as the next
    /// try, with one more try allowed.
    TakeOver,
    /// A worker that shuts down gives an unfinished try back to the queue.
    HandBack,
    /// The scheduler ends a try whose worker stopped heartbeating (retry rules apply).
    FailZombie,
    /// The broker gave up on the try's message (delivery limit); no retry.
    FailUndeliverable,
    /// Queued for longer than `task_queued_timeout` (Airflow's): its message
    /// was lost (a database restored from a backup, broker data lost) or no
    /// worker consumes its queue. Retry rules apply.
    FailQueuedTimeout,
    /// Cleared by hand (Airflow's clear): the task runs again.
    Clear,
    /// Marked `success` by hand (also when a run is set to success).
    MarkSuccess,
    /// Marked `failed` by hand (also when a run is set to failed).
    MarkFailed,
    /// Marked `skipped` by hand (also when a run is set to failed).
    MarkSkipped,
}

impl TaskTransition {
    /// Every transition, in the order a task meets them.
    pub const ALL: [TaskTransition; 22] = [
        TaskTransition::Create,
        TaskTransition::Schedule,
        TaskTransition::Expand,
        TaskTransition::FailUnexpandable,
        TaskTransition::Skip,
        TaskTransition::UpstreamFail,
        TaskTransition::Dispatch,
        TaskTransition::FailUnrenderable,
        TaskTransition::Claim,
        TaskTransition::ClaimRetry,
        TaskTransition::ClaimReschedule,
        TaskTransition::Finish,
        TaskTransition::Reschedule,
        TaskTransition::TakeOver,
        TaskTransition::HandBack,
        TaskTransition::FailZombie,
        TaskTransition::FailUndeliverable,
        TaskTransition::FailQueuedTimeout,
        TaskTransition::Clear,
        TaskTransition::MarkSuccess,
        TaskTransition::MarkFailed,
        TaskTransition::MarkSkipped,
    ];

    /// The states a task instance must be in for this transition to move it
    /// (empty for [`TaskTransition::Create`], which makes new rows).
    pub const fn from(self) -> &'static [TaskState] {
        use TaskState::*;
        match self {
            TaskTransition::Create => &[],
            TaskTransition::Schedule | TaskTransition::Expand | TaskTransition::FailUnexpandable => &[None],
            TaskTransition::Skip | TaskTransition::UpstreamFail | TaskTransition::MarkSkipped => &[None, Scheduled],
            TaskTransition::Dispatch => &[Scheduled],
            TaskTransition::FailUnrenderable | TaskTransition::Claim | TaskTransition::FailQueuedTimeout => &[Queued],
            TaskTransition::ClaimRetry => &[UpForRetry],
            TaskTransition::ClaimReschedule => &[UpForReschedule],
            TaskTransition::Finish
            | TaskTransition::Reschedule
            | TaskTransition::TakeOver
            | TaskTransition::HandBack
            | TaskTransition::FailZombie => &[Running],
            TaskTransition::FailUndeliverable => &[Queued, Running],
            TaskTransition::Clear => &[Success, Failed, UpForRetry, UpForReschedule, UpstreamFailed, Skipped, Removed],
            TaskTransition::MarkSuccess => {
                &[None, Scheduled, Queued, Running, Failed, UpForRetry, UpForReschedule, UpstreamFailed, Skipped]
            }
            TaskTransition::MarkFailed => {
                &[None, Scheduled, Queued, Running, Success, UpForRetry, UpForReschedule, UpstreamFailed, Skipped]
            }
        }
    }

    /// The states this transition may leave a task instance in.
    pub const fn to(self) -> &'static [TaskState] {
        use TaskState::*;
        match self {
            TaskTransition::Create => &[None, Scheduled],
            TaskTransition::Schedule | TaskTransition::Expand => &[Scheduled],
            TaskTransition::FailUnexpandable
            | TaskTransition::FailUnrenderable
            | TaskTransition::FailUndeliverable
            | TaskTransition::MarkFailed => &[Failed],
            TaskTransition::Skip | TaskTransition::MarkSkipped => &[Skipped],
            TaskTransition::UpstreamFail => &[UpstreamFailed],
            TaskTransition::Dispatch | TaskTransition::HandBack => &[Queued],
            TaskTransition::Claim
            | TaskTransition::ClaimRetry
            | TaskTransition::ClaimReschedule
            | TaskTransition::TakeOver => &[Running],
            TaskTransition::Reschedule => &[UpForReschedule],
            TaskTransition::Finish => &[Success, Failed, UpForRetry, Skipped],
            TaskTransition::FailZombie | TaskTransition::FailQueuedTimeout => &[Failed, UpForRetry],
            TaskTransition::Clear => &[None],
            TaskTransition::MarkSuccess => &[Success],
        }
    }

    /// Who performs it.
    pub const fn actor(self) -> &'static str {
        match self {
            TaskTransition::Create
            | TaskTransition::Schedule
            | TaskTransition::Expand
            | TaskTransition::FailUnexpandable
            | TaskTransition::Skip
            | TaskTransition::UpstreamFail
            | TaskTransition::Dispatch
            | TaskTransition::FailUnrenderable
            | TaskTransition::FailZombie
            | TaskTransition::FailUndeliverable
            | TaskTransition::FailQueuedTimeout => "scheduler",
            TaskTransition::Claim
            | TaskTransition::ClaimRetry
            | TaskTransition::ClaimReschedule
            | TaskTransition::Finish
            | TaskTransition::Reschedule
            | TaskTransition::TakeOver
            | TaskTransition::HandBack => "worker",
            TaskTransition::Clear
            | TaskTransition::MarkSuccess
            | TaskTransition::MarkFailed
            | TaskTransition::MarkSkipped => "API",
        }
    }

    /// The functions under `shared/src/db/task_instances/` whose statements
    /// perform it, as `module::function`.
    pub const fn statements(self) -> &'static [&'static str] {
        match self {
            TaskTransition::Create => &["run_progress::create_for_run"],
            TaskTransition::Schedule | TaskTransition::Skip | TaskTransition::UpstreamFail => &["run_progress::apply"],
            TaskTransition::Expand => &["run_progress::expand_mapped"],
            TaskTransition::FailUnexpandable => &["run_progress::fail_unexpandable"],
            TaskTransition::Dispatch => &["dispatch::take_for_dispatch"],
            TaskTransition::FailUnrenderable => &["dispatch::fail_unrenderable"],
            TaskTransition::Claim | TaskTransition::Finish => {
                &["worker_tries::claim", "worker_tries::claim_and_finish_many", "worker_tries::finish"]
            }
            TaskTransition::ClaimRetry | TaskTransition::ClaimReschedule => &["worker_tries::claim"],
            TaskTransition::Reschedule => &["worker_tries::reschedule"],
            TaskTransition::TakeOver => &["worker_tries::take_over"],
            TaskTransition::HandBack => &["worker_tries::hand_back"],
            TaskTransition::FailZombie => &["sweeps::fail_zombie"],
            TaskTransition::FailUndeliverable => &["sweeps::fail_undeliverable"],
            TaskTransition::FailQueuedTimeout => &["sweeps::fail_queued_timeout"],
            TaskTransition::Clear => &["repair::clear"],
            TaskTransition::MarkSuccess | TaskTransition::MarkFailed | TaskTransition::MarkSkipped => &["repair::mark"],
        }
    }

    /// The transition that marks a task instance `state` by hand, if it can be.
    pub const fn mark(state: TaskState) -> Option<TaskTransition> {
        match state {
            TaskState::Success => Some(TaskTransition::MarkSuccess),
            TaskState::Failed => Some(TaskTransition::MarkFailed),
            TaskState::Skipped => Some(TaskTransition::MarkSkipped),
            _ => Option::None,
        }
    }

    /// Whether this transition moves a task instance that is `state`.
    pub fn moves(self, state: TaskState) -> bool {
        self.from().contains(&state)
    }

    /// The spellings of [`Self::from`], to bind as a statement's `state = ANY($n)` guard.
    pub fn from_strs(self) -> Vec<&'static str> {
        self.from().iter().map(|s| s.as_str()).collect()
    }

    /// The single state this transition leaves a task instance in; panics for
    /// [`Self::Create`], [`Self::Finish`], [`Self::FailZombie`] and [`Self::FailQueuedTimeout`], whose
    /// outcome the statement decides.
    pub fn target(self) -> TaskState {
        match self.to() {
            [only] => *only,
            several => panic!("{self:?} ends in one of {several:?}, not one state"),
        }
    }
}

/// Every way gust changes a DAG run's state: the run half of the transition table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunTransition {
    /// Triggered, scheduled or backfilled: the run is created `queued`.
    Create,
    /// A scheduler starts it (DAG unpaused, below `max_active_runs`).
    Start,
    /// Its last task instance finished.
    Finish,
    /// Set by hand (`PATCH …/dagRuns/{id}`).
    SetByHand,
    /// Some of its task instances were cleared: it is scheduled again.
    Requeue,
    /// Its backfill was cancelled before it started.
    CancelBackfill,
}

impl RunTransition {
    /// Every run transition.
    pub const ALL: [RunTransition; 6] = [
        RunTransition::Create,
        RunTransition::Start,
        RunTransition::Finish,
        RunTransition::SetByHand,
        RunTransition::Requeue,
        RunTransition::CancelBackfill,
    ];

    /// The states a run must be in for this transition to move it.
    pub const fn from(self) -> &'static [RunState] {
        use RunState::*;
        match self {
            RunTransition::Create => &[],
            RunTransition::Start | RunTransition::CancelBackfill => &[Queued],
            RunTransition::Finish => &[Running],
            RunTransition::SetByHand | RunTransition::Requeue => &[Queued, Running, Success, Failed],
        }
    }

    /// The states it may leave a run in.
    pub const fn to(self) -> &'static [RunState] {
        use RunState::*;
        match self {
            RunTransition::Create | RunTransition::Requeue => &[Queued],
            RunTransition::Start => &[Running],
            RunTransition::Finish => &[Success, Failed],
            RunTransition::SetByHand => &[Queued, Success, Failed],
            RunTransition::CancelBackfill => &[Failed],
        }
    }

    /// Who performs it.
    pub const fn actor(self) -> &'static str {
        match self {
            RunTransition::Create => "scheduler (schedule), API (trigger, backfill)",
            RunTransition::Start | RunTransition::Finish => "scheduler",
            RunTransition::SetByHand | RunTransition::Requeue | RunTransition::CancelBackfill => "API",
        }
    }

    /// The spellings of [`Self::from`], to bind as a statement's `state = ANY($n)` guard.
    pub fn from_strs(self) -> Vec<&'static str> {
        self.from().iter().map(|s| s.as_str()).collect()
    }

    /// The functions under `shared/src/db/` whose statements perform it, as `module::function`.
    pub const fn statements(self) -> &'static [&'static str] {
        match self {
            RunTransition::Create => &["runs::insert"],
            RunTransition::Start => &["runs::start"],
            RunTransition::Finish => &["runs::finish"],
            RunTransition::SetByHand => &["runs::set_state"],
            RunTransition::Requeue => &["runs::requeue"],
            RunTransition::CancelBackfill => &["backfills::cancel"],
        }
    }
}

/// The transition table as README.md shows it (section "Task states"): one
/// row per transition, task transitions first.
pub fn transition_table_markdown() -> String {
    fn states<S: std::fmt::Display>(states: &[S]) -> String {
        if states.is_empty() {
            return "(new)".into();
        }
        states.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
    }
    fn code(names: &[&str]) -> String {
        names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
    }
    let mut table = String::from("| of | transition | from | to | by | statement |\n|---|---|---|---|---|---|\n");
    for t in TaskTransition::ALL {
        let (from, to, by, statements) = (states(t.from()), states(t.to()), t.actor(), code(t.statements()));
        table += &format!("| task | {t:?} | {from} | {to} | {by} | {statements} |\n");
    }
    for t in RunTransition::ALL {
        let (from, to, by, statements) = (states(t.from()), states(t.to()), t.actor(), code(t.statements()));
        table += &format!("| run | {t:?} | {from} | {to} | {by} | {statements} |\n");
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_round_trips_through_its_spelling() {
        for state in ALL_TASK_STATES {
            assert_eq!(TaskState::parse(state.as_str()), Some(state));
        }
        assert_eq!(TaskState::parse("bogus"), None);
    }

    #[test]
    fn the_happy_path_is_allowed_in_order() {
        use TaskState::*;
        for (from, to) in [(None, Scheduled), (Scheduled, Queued), (Queued, Running), (Running, Success)] {
            assert!(from.can_become(to), "{from} -> {to}");
        }
    }

    #[test]
    fn a_finished_try_cannot_be_claimed_or_rerun_by_a_stale_worker() {
        use TaskState::*;
        for finished in [Success, Failed, UpstreamFailed, Skipped] {
            assert!(!finished.can_become(Running), "{finished} -> running");
            assert!(!finished.can_become(Queued), "{finished} -> queued");
        }
        assert!(!TaskTransition::Claim.moves(Running) && !TaskTransition::ClaimRetry.moves(Running));
        assert!(!None.can_become(Running), "a task must be queued before it runs");
    }

    #[test]
    fn upstream_failed_only_comes_from_a_task_that_never_started() {
        use TaskState::*;
        assert_eq!(UpstreamFailed.allowed_from(), vec![None, Scheduled]);
        assert!(!Running.can_become(UpstreamFailed));
    }

    #[test]
    fn finished_states_are_exactly_the_terminal_ones() {
        let finished: Vec<_> = ALL_TASK_STATES.into_iter().filter(|s| s.is_finished()).collect();
        use TaskState::*;
        assert_eq!(finished, vec![Success, Failed, UpstreamFailed, Skipped, Removed]);
        assert!(RunState::Success.is_finished() && !RunState::Running.is_finished());
    }

    #[test]
    fn every_transition_leaves_a_task_in_a_state_it_can_reach_and_names_one_target_where_it_has_one() {
        for t in TaskTransition::ALL {
            assert!(!t.to().is_empty(), "{t:?} leads nowhere");
            for from in t.from() {
                for to in t.to() {
                    assert!(from.can_become(*to), "{t:?}: {from} -> {to}");
                }
            }
        }
        assert_eq!(TaskTransition::Dispatch.target(), TaskState::Queued);
        assert_eq!(TaskTransition::mark(TaskState::Running), Option::None);
    }

    #[test]
    fn a_retry_from_its_delay_queue_is_claimed_and_a_clear_makes_a_task_run_again() {
        use TaskState::*;
        assert!(UpForRetry.can_become(Running), "a retry is never `queued`: it waits in the broker");
        assert!(!TaskTransition::Claim.moves(UpForRetry));
        for finished in [Success, Failed, UpstreamFailed, Skipped, Removed, UpForRetry] {
            assert!(TaskTransition::Clear.moves(finished), "{finished}");
        }
        for live in [None, Scheduled, Queued, Running] {
            assert!(!TaskTransition::Clear.moves(live), "{live}");
        }
    }

    #[test]
    fn a_rescheduled_sensor_holds_no_slot_and_its_next_poke_continues_the_same_try() {
        use TaskState::*;
        assert_eq!(TaskTransition::Reschedule.from(), &[Running]);
        assert_eq!(TaskTransition::Reschedule.target(), UpForReschedule);
        assert!(UpForReschedule.can_become(Running) && !UpForReschedule.is_finished());
        assert!(!TaskTransition::Claim.moves(UpForReschedule) && !TaskTransition::ClaimRetry.moves(UpForReschedule));
        for by_hand in [TaskTransition::Clear, TaskTransition::MarkSuccess, TaskTransition::MarkFailed] {
            assert!(by_hand.moves(UpForReschedule), "{by_hand:?}");
        }
    }

    #[test]
    fn a_takeover_and_a_hand_back_start_only_from_a_running_try() {
        use TaskState::*;
        assert_eq!(TaskTransition::TakeOver.from(), &[Running]);
        assert_eq!(TaskTransition::HandBack.to(), &[Queued]);
        assert!(Running.can_become(Running), "a takeover continues the task as the next try");
    }

    #[test]
    fn every_statement_the_table_names_exists() {
        let source = |module: &str| {
            let path = match module {
                "runs" | "backfills" => format!("{}/src/db/{module}.rs", env!("CARGO_MANIFEST_DIR")),
                _ => format!("{}/src/db/task_instances/{module}.rs", env!("CARGO_MANIFEST_DIR")),
            };
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
        };
        let named = TaskTransition::ALL
            .iter()
            .flat_map(|t| t.statements())
            .chain(RunTransition::ALL.iter().flat_map(|t| t.statements()));
        for statement in named {
            let (module, function) = statement.split_once("::").expect("module::function");
            assert!(source(module).contains(&format!("pub async fn {function}(")), "no function {statement}");
        }
    }

    #[test]
    fn readme_shows_the_transition_table() {
        let readme = include_str!("../../README.md");
        let table = transition_table_markdown();
        assert!(
            readme.contains(&table),
            "README.md's \"Task states\" table differs from shared/src/state.rs; paste this there:\n{table}"
        );
    }
}
