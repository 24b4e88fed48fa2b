//! Trigger rules: whether a task that has not started may run, given the
//! states of its direct upstream tasks, with Airflow's names and semantics
//! (`TriggerRuleDep`), including when a task is skipped or upstream_failed
//! instead of waiting.

use serde::{Deserialize, Serialize};

use crate::state::TaskState;

/// When a task runs, judged from the states of its direct upstream tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerRule {
    /// Every upstream succeeded (the default); a failure or a skip is passed on at once.
    #[default]
    AllSuccess,
    /// Every upstream failed or was upstream_failed; a success or a skip skips the task.
    AllFailed,
    /// Every upstream finished, whatever its outcome.
    AllDone,
    /// Every upstream was skipped; any other outcome skips the task.
    AllSkipped,
    /// At least one upstream succeeded, without waiting for the others.
    OneSuccess,
    /// At least one upstream failed or was upstream_failed, without waiting for the others.
    OneFailed,
    /// At least one upstream succeeded or failed, without waiting for the others.
    OneDone,
    /// Every upstream finished and none failed or was upstream_failed.
    NoneFailed,
    /// Like `none_failed`, but the task is skipped when every upstream was skipped (the join after a branch).
    NoneFailedMinOneSuccess,
    /// Every upstream finished and none was skipped.
    NoneSkipped,
    /// Runs as soon as the run starts, whatever its upstreams do.
    Always,
}

/// What a trigger rule makes of a task that has not started yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TriggerOutcome {
    /// Not decided yet: some upstream has still to finish.
    Wait,
    /// The task may be scheduled.
    Run,
    /// The task will never run and ends `skipped`.
    Skip,
    /// The task will never run and ends `upstream_failed`.
    UpstreamFailed,
}

/// How many direct upstreams of a task are in each state a trigger rule looks at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpstreamCounts {
    /// Upstreams in `success`.
    pub success: usize,
    /// Upstreams in `skipped`.
    pub skipped: usize,
    /// Upstreams in `failed`.
    pub failed: usize,
    /// Upstreams in `upstream_failed`.
    pub upstream_failed: usize,
    /// Upstreams in `removed`; they no longer count as upstreams at all.
    pub removed: usize,
    /// Every direct upstream, finished or not.
    pub total: usize,
}

impl UpstreamCounts {
    /// Counts the states of a task's direct upstreams.
    pub fn of(states: impl IntoIterator<Item = TaskState>) -> Self {
        let mut counts = UpstreamCounts::default();
        for state in states {
            counts.total += 1;
            match state {
                TaskState::Success => counts.success += 1,
                TaskState::Skipped => counts.skipped += 1,
                TaskState::Failed => counts.failed += 1,
                TaskState::UpstreamFailed => counts.upstream_failed += 1,
                TaskState::Removed => counts.removed += 1,
                _ => {}
            }
        }
        counts
    }

    /// Upstreams in a final state, `removed` included.
    pub fn done(&self) -> usize {
        self.success + self.skipped + self.failed + self.upstream_failed + self.removed
    }
}

impl TriggerRule {
    /// Every rule, in the order the docs list them.
    pub const ALL: [TriggerRule; 11] = [
        TriggerRule::AllSuccess,
        TriggerRule::AllFailed,
        TriggerRule::AllDone,
        TriggerRule::AllSkipped,
        TriggerRule::OneSuccess,
        TriggerRule::OneFailed,
        TriggerRule::OneDone,
        TriggerRule::NoneFailed,
        TriggerRule::NoneFailedMinOneSuccess,
        TriggerRule::NoneSkipped,
        TriggerRule::Always,
    ];

    /// The spelling used in DAG files and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            TriggerRule::AllSuccess => "all_success",
            TriggerRule::AllFailed => "all_failed",
            TriggerRule::AllDone => "all_done",
            TriggerRule::AllSkipped => "all_skipped",
            TriggerRule::OneSuccess => "one_success",
            TriggerRule::OneFailed => "one_failed",
            TriggerRule::OneDone => "one_done",
            TriggerRule::NoneFailed => "none_failed",
            TriggerRule::NoneFailedMinOneSuccess => "none_failed_min_one_success",
            TriggerRule::NoneSkipped => "none_skipped",
            TriggerRule::Always => "always",
        }
    }

    /// Parses the spelling used in DAG files.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|rule| rule.as_str() == text)
    }

    /// Whether this is the default rule, for skipping it when serializing.
    pub fn is_default(&self) -> bool {
        *self == TriggerRule::default()
    }

    /// Decides a task that has not started from the states of its direct upstreams.
    ///
    /// Follows Airflow's `TriggerRuleDep` with `flag_upstream_failed`: a task
    /// is skipped or upstream_failed as soon as its rule can no longer be met,
    /// without waiting for the remaining upstreams. A task without upstreams
    /// runs. `removed` upstreams are left out, as Airflow leaves out tasks
    /// that are no longer in the DAG.
    pub fn evaluate(self, upstream: UpstreamCounts) -> TriggerOutcome {
        use TriggerOutcome::{Run, Skip, UpstreamFailed, Wait};
        let total = upstream.total.saturating_sub(upstream.removed);
        if total == 0 || self == TriggerRule::Always {
            return Run;
        }
        let UpstreamCounts { success, skipped, failed, upstream_failed, .. } = upstream;
        let done = upstream.done().saturating_sub(upstream.removed);
        let all_done = done >= total;
        let any_failed = failed + upstream_failed > 0;
        let when = |condition: bool| if condition { Run } else { Wait };
        match self {
            TriggerRule::AllSuccess if any_failed => UpstreamFailed,
            TriggerRule::AllSuccess if skipped > 0 => Skip,
            TriggerRule::AllSuccess => when(success == total),
            TriggerRule::AllFailed if success + skipped > 0 => Skip,
            TriggerRule::AllFailed => when(failed + upstream_failed == total),
            TriggerRule::AllDone => when(all_done),
            TriggerRule::AllSkipped if success + failed + upstream_failed > 0 => Skip,
            TriggerRule::AllSkipped => when(skipped == total),
            TriggerRule::OneSuccess if all_done && done == skipped => Skip,
            TriggerRule::OneSuccess if all_done && success == 0 => UpstreamFailed,
            TriggerRule::OneSuccess => when(success > 0),
            TriggerRule::OneFailed if all_done && !any_failed => Skip,
            TriggerRule::OneFailed => when(any_failed),
            TriggerRule::OneDone if all_done && success + failed == 0 => Skip,
            TriggerRule::OneDone => when(success + failed > 0),
            TriggerRule::NoneFailed if any_failed => UpstreamFailed,
            TriggerRule::NoneFailed => when(success + skipped == total),
            TriggerRule::NoneFailedMinOneSuccess if any_failed => UpstreamFailed,
            TriggerRule::NoneFailedMinOneSuccess if skipped == total => Skip,
            TriggerRule::NoneFailedMinOneSuccess => when(success + skipped == total),
            TriggerRule::NoneSkipped if skipped > 0 => Skip,
            TriggerRule::NoneSkipped => when(all_done),
            TriggerRule::Always => Run,
        }
    }
}

impl std::fmt::Display for TriggerRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TriggerOutcome::*;

    /// The outcome of every rule for every pair of upstream states. Columns
    /// follow [`TriggerRule::ALL`]: all_success, all_failed, all_done,
    /// all_skipped, one_success, one_failed, one_done, none_failed,
    /// none_failed_min_one_success, none_skipped, always. `running` stands
    /// for any unfinished state; `upf` is upstream_failed.
    const TWO_UPSTREAMS: &str = "
        #                                 all   all   all   all   one   one   one   none  none  none  always
        #                                 succ  fail  done  skip  succ  fail  done  fail  f1s   skip
        success         success           run   skip  run   skip  run   skip  run   run   run   run   run
        success         failed            upf   skip  run   skip  run   run   run   upf   upf   run   run
        success         upstream_failed   upf   skip  run   skip  run   run   run   upf   upf   run   run
        success         skipped           skip  skip  run   skip  run   skip  run   run   run   skip  run
        success         running           wait  skip  wait  skip  run   wait  run   wait  wait  wait  run
        failed          failed            upf   run   run   skip  upf   run   run   upf   upf   run   run
        failed          upstream_failed   upf   run   run   skip  upf   run   run   upf   upf   run   run
        failed          skipped           upf   skip  run   skip  upf   run   run   upf   upf   skip  run
        failed          running           upf   wait  wait  skip  wait  run   run   upf   upf   wait  run
        upstream_failed upstream_failed   upf   run   run   skip  upf   run   skip  upf   upf   run   run
        upstream_failed skipped           upf   skip  run   skip  upf   run   skip  upf   upf   skip  run
        upstream_failed running           upf   wait  wait  skip  wait  run   wait  upf   upf   wait  run
        skipped         skipped           skip  skip  run   run   skip  skip  skip  run   skip  skip  run
        skipped         running           skip  skip  wait  wait  wait  wait  wait  wait  wait  skip  run
        running         running           wait  wait  wait  wait  wait  wait  wait  wait  wait  wait  run
    ";

    fn outcome(cell: &str) -> TriggerOutcome {
        match cell {
            "run" => Run,
            "wait" => Wait,
            "skip" => Skip,
            "upf" => UpstreamFailed,
            other => panic!("unknown outcome `{other}` in the table"),
        }
    }

    #[test]
    fn every_rule_decides_every_pair_of_upstream_states_like_airflow() {
        let rows: Vec<&str> =
            TWO_UPSTREAMS.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
        assert_eq!(rows.len(), 15, "every unordered pair of the five upstream states");
        let mut mismatches = Vec::new();
        for row in rows {
            let cells: Vec<&str> = row.split_whitespace().collect();
            assert_eq!(cells.len(), 2 + TriggerRule::ALL.len(), "{row}");
            let states = [cells[0], cells[1]].map(|s| TaskState::parse(s).unwrap_or_else(|| panic!("state `{s}`")));
            for (rule, cell) in TriggerRule::ALL.into_iter().zip(&cells[2..]) {
                for order in [states, [states[1], states[0]]] {
                    let got = rule.evaluate(UpstreamCounts::of(order));
                    if got != outcome(cell) {
                        mismatches.push(format!("{rule} with {order:?}: expected {cell}, got {got:?}"));
                    }
                }
            }
        }
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    }

    #[test]
    fn every_unfinished_state_counts_as_not_done() {
        for state in crate::state::ALL_TASK_STATES.into_iter().filter(|s| !s.is_finished()) {
            let counts = UpstreamCounts::of([TaskState::Success, state]);
            assert_eq!(TriggerRule::AllDone.evaluate(counts), Wait, "{state}");
            assert_eq!(TriggerRule::AllSuccess.evaluate(counts), Wait, "{state}");
        }
    }

    #[test]
    fn a_task_without_upstreams_runs_whatever_its_rule() {
        for rule in TriggerRule::ALL {
            assert_eq!(rule.evaluate(UpstreamCounts::default()), Run, "{rule}");
        }
    }

    #[test]
    fn a_single_upstream_is_judged_like_airflow() {
        use TaskState::{Failed, Skipped, Success, UpstreamFailed as Upf};
        let one = |rule: TriggerRule, state| rule.evaluate(UpstreamCounts::of([state]));
        assert_eq!(
            [Success, Failed, Upf, Skipped].map(|s| one(TriggerRule::AllSuccess, s)),
            [Run, UpstreamFailed, UpstreamFailed, Skip]
        );
        assert_eq!(
            [Success, Failed, Upf, Skipped].map(|s| one(TriggerRule::OneSuccess, s)),
            [Run, UpstreamFailed, UpstreamFailed, Skip]
        );
        assert_eq!(
            [Success, Failed, Upf, Skipped].map(|s| one(TriggerRule::NoneFailedMinOneSuccess, s)),
            [Run, UpstreamFailed, UpstreamFailed, Skip]
        );
        assert_eq!([Success, Failed, Upf, Skipped].map(|s| one(TriggerRule::AllFailed, s)), [Skip, Run, Run, Skip]);
    }

    #[test]
    fn removed_upstreams_are_left_out() {
        let counts = UpstreamCounts::of([TaskState::Success, TaskState::Removed]);
        assert_eq!(TriggerRule::AllSuccess.evaluate(counts), Run);
        assert_eq!(TriggerRule::AllSkipped.evaluate(UpstreamCounts::of([TaskState::Skipped, TaskState::Removed])), Run);
        assert_eq!(TriggerRule::AllSuccess.evaluate(UpstreamCounts::of([TaskState::Removed])), Run);
    }

    #[test]
    fn a_join_after_a_branch_runs_when_one_path_succeeded_and_the_others_were_skipped() {
        use TaskState::{Skipped, Success};
        let counts = UpstreamCounts::of([Skipped, Success, Skipped]);
        assert_eq!(TriggerRule::NoneFailedMinOneSuccess.evaluate(counts), Run);
        assert_eq!(TriggerRule::AllSuccess.evaluate(counts), Skip);
    }

    #[test]
    fn every_rule_round_trips_through_its_spelling_and_json() {
        for rule in TriggerRule::ALL {
            assert_eq!(TriggerRule::parse(rule.as_str()), Some(rule));
            assert_eq!(serde_json::to_value(rule).unwrap(), serde_json::Value::String(rule.as_str().into()));
        }
        assert_eq!(TriggerRule::parse("all_sucess"), None);
        assert_eq!(TriggerRule::default(), TriggerRule::AllSuccess);
    }
}
