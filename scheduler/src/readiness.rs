//! Which task instances of a run can move on, and whether the run is over.
//! Pure logic: the caller loads states and applies the decisions.

use std::collections::HashMap;

use gust_shared::{
    dag::Dag,
    state::{RunState, TaskState},
};
use uuid::Uuid;

/// What the scheduler should change in one run.
#[derive(Debug, Default, PartialEq)]
pub struct Decisions {
    /// Task instances whose upstreams all succeeded.
    pub schedule: Vec<Uuid>,
    /// Task instances with a failed upstream.
    pub upstream_failed: Vec<Uuid>,
    /// Task instances whose upstreams were skipped.
    pub skip: Vec<Uuid>,
    /// The run's final state, once every task instance is finished.
    pub run_outcome: Option<RunState>,
}

/// Applies the `all_success` trigger rule in topological order, so an
/// `upstream_failed` cascades through the whole run in one pass.
pub fn decide(dag: &Dag, instances: &[(Uuid, String, TaskState)]) -> Decisions {
    let mut states: HashMap<&str, (Uuid, TaskState)> =
        instances.iter().map(|(id, task, state)| (task.as_str(), (*id, *state))).collect();
    let mut decisions = Decisions::default();
    for task in &dag.tasks {
        let Some(&(id, state)) = states.get(task.task_id.as_str()) else { continue };
        if state != TaskState::None {
            continue;
        }
        // An upstream that was not loaded is unknown, so the task waits for a full look.
        let Some(upstream) =
            task.upstream.iter().map(|up| states.get(up.as_str()).map(|(_, s)| *s)).collect::<Option<Vec<TaskState>>>()
        else {
            continue;
        };
        let next = if upstream.iter().any(|s| matches!(s, TaskState::Failed | TaskState::UpstreamFailed)) {
            TaskState::UpstreamFailed
        } else if !upstream.iter().all(|s| s.is_finished()) {
            continue;
        } else if upstream.iter().any(|s| *s == TaskState::Skipped) {
            TaskState::Skipped
        } else {
            TaskState::Scheduled
        };
        match next {
            TaskState::UpstreamFailed => decisions.upstream_failed.push(id),
            TaskState::Skipped => decisions.skip.push(id),
            _ => decisions.schedule.push(id),
        }
        states.insert(task.task_id.as_str(), (id, next));
    }
    if states.values().all(|(_, s)| s.is_finished()) {
        let success = states.values().all(|(_, s)| s.counts_as_success());
        decisions.run_outcome = Some(if success { RunState::Success } else { RunState::Failed });
    }
    decisions
}

#[cfg(test)]
mod tests {
    use super::*;
    use gust_shared::dag::parse_dag_file;

    fn diamond() -> Dag {
        parse_dag_file(
            "diamond.yaml",
            "dag_id: diamond\ntasks:\n  - {id: a, operator: noop}\n  - {id: b, operator: noop, depends_on: [a]}\n  - {id: c, operator: noop, depends_on: [a]}\n  - {id: d, operator: noop, depends_on: [b, c]}\n",
        )
        .unwrap()
    }

    fn instances(states: &[(&str, TaskState)]) -> Vec<(Uuid, String, TaskState)> {
        states.iter().map(|(t, s)| (Uuid::new_v4(), t.to_string(), *s)).collect()
    }

    fn id_of(instances: &[(Uuid, String, TaskState)], task: &str) -> Uuid {
        instances.iter().find(|i| i.1 == task).unwrap().0
    }

    #[test]
    fn only_the_root_is_scheduled_in_a_fresh_run() {
        use TaskState::None;
        let tis = instances(&[("a", None), ("b", None), ("c", None), ("d", None)]);
        let d = decide(&diamond(), &tis);
        assert_eq!(d.schedule, vec![id_of(&tis, "a")]);
        assert_eq!(d.run_outcome, Option::None);
    }

    #[test]
    fn a_join_waits_for_every_upstream() {
        use TaskState::*;
        let tis = instances(&[("a", Success), ("b", Success), ("c", Running), ("d", None)]);
        let d = decide(&diamond(), &tis);
        assert!(d.schedule.is_empty());
        let tis = instances(&[("a", Success), ("b", Success), ("c", Success), ("d", None)]);
        assert_eq!(decide(&diamond(), &tis).schedule, vec![id_of(&tis, "d")]);
    }

    #[test]
    fn a_failed_task_makes_every_downstream_upstream_failed_in_one_pass() {
        use TaskState::*;
        let tis = instances(&[("a", Failed), ("b", None), ("c", None), ("d", None)]);
        let d = decide(&diamond(), &tis);
        assert_eq!(d.upstream_failed.len(), 3);
        assert_eq!(d.run_outcome, Some(RunState::Failed));
    }

    #[test]
    fn a_failure_on_one_branch_fails_the_join_while_the_other_branch_runs() {
        use TaskState::*;
        let tis = instances(&[("a", Success), ("b", Failed), ("c", Running), ("d", None)]);
        let d = decide(&diamond(), &tis);
        assert_eq!(d.upstream_failed, vec![id_of(&tis, "d")]);
        assert_eq!(d.run_outcome, Option::None, "c is still running");
    }

    #[test]
    fn a_task_whose_upstreams_were_not_loaded_is_left_alone() {
        use TaskState::*;
        // Only b, c and d were loaded: c waits on a, which is unknown here.
        let tis = instances(&[("b", Success), ("c", None), ("d", None)]);
        let d = decide(&diamond(), &tis);
        assert!(d.schedule.is_empty() && d.upstream_failed.is_empty(), "{d:?}");
    }

    #[test]
    fn a_run_succeeds_when_every_task_succeeded() {
        use TaskState::*;
        let tis = instances(&[("a", Success), ("b", Success), ("c", Success), ("d", Success)]);
        assert_eq!(decide(&diamond(), &tis).run_outcome, Some(RunState::Success));
    }
}
