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
    /// Not run because an upstream failed.
    UpstreamFailed,
    /// Not run by choice (branching, trigger rules).
    Skipped,
    /// Its task no longer exists in the DAG.
    Removed,
}

/// Every task state, for parsing and tables.
pub const ALL_TASK_STATES: [TaskState; 10] = [
    TaskState::None,
    TaskState::Scheduled,
    TaskState::Queued,
    TaskState::Running,
    TaskState::Success,
    TaskState::Failed,
    TaskState::UpForRetry,
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

    /// The states from which a task instance may move to `self`.
    pub const fn allowed_from(self) -> &'static [TaskState] {
        use TaskState::*;
        match self {
            None => &[],
            Scheduled => &[None],
            // Running → queued: a worker hands an unfinished try back when it shuts down.
            Queued => &[Scheduled, UpForRetry, Running],
            Running => &[Queued],
            Success => &[Running, Queued, None, Scheduled, Failed, UpstreamFailed, Skipped, UpForRetry],
            Failed => &[Running, Queued, None, Scheduled, Success, UpstreamFailed, Skipped, UpForRetry],
            UpForRetry => &[Running],
            UpstreamFailed => &[None, Scheduled],
            Skipped => &[None, Scheduled],
            Removed => &[None, Scheduled, Queued, UpForRetry],
        }
    }

    /// Whether `self → next` is a legal transition.
    pub fn can_become(self, next: TaskState) -> bool {
        next.allowed_from().contains(&self)
    }

    /// The spellings of [`Self::allowed_from`], ready to bind as `state = ANY($n)`.
    pub fn allowed_from_strs(self) -> Vec<&'static str> {
        self.allowed_from().iter().map(|s| s.as_str()).collect()
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
        [RunState::Queued, RunState::Running, RunState::Success, RunState::Failed]
            .into_iter()
            .find(|s| s.as_str() == text)
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
        assert!(!Running.can_become(Running));
        assert!(!None.can_become(Running), "a task must be queued before it runs");
    }

    #[test]
    fn upstream_failed_only_comes_from_a_task_that_never_started() {
        use TaskState::*;
        assert_eq!(UpstreamFailed.allowed_from(), &[None, Scheduled]);
        assert!(!Running.can_become(UpstreamFailed));
    }

    #[test]
    fn finished_states_are_exactly_the_terminal_ones() {
        let finished: Vec<_> = ALL_TASK_STATES.into_iter().filter(|s| s.is_finished()).collect();
        use TaskState::*;
        assert_eq!(finished, vec![Success, Failed, UpstreamFailed, Skipped, Removed]);
        assert!(RunState::Success.is_finished() && !RunState::Running.is_finished());
    }
}
