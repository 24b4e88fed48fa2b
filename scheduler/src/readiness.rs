//! Which task instances of a run can move on, and whether the run is over.
//! Pure logic: the caller loads states (and branch choices) and applies the decisions.

use std::collections::{HashMap, HashSet};

use gust_shared::{
    dag::{Dag, TriggerOutcome, UpstreamCounts},
    db::task_instances::run_progress::InstanceState,
    state::{RunState, TaskState},
};
use uuid::Uuid;

use crate::versions::CachedDag;

/// What each succeeded branch task chose: branch task id → the task ids it follows.
///
/// Branch tasks are those whose operator [`is_branch`](gust_shared::dag::OperatorSpec::is_branch).
/// A succeeded branch task missing from the map has a choice that is not
/// loaded yet, so its direct downstream tasks wait; one that pushed no
/// choice belongs in the map with an empty list (it skips every direct downstream).
pub type BranchChoices = HashMap<String, Vec<String>>;

/// What the scheduler should change in one run.
#[derive(Debug, Default, PartialEq)]
pub struct Decisions {
    /// Task instances whose trigger rule is met.
    pub schedule: Vec<Uuid>,
    /// Task instances whose trigger rule can no longer be met because of a failure.
    pub upstream_failed: Vec<Uuid>,
    /// Task instances skipped by a branch or by their trigger rule.
    pub skip: Vec<Uuid>,
    /// Placeholders of mapped tasks whose trigger rule is met: expand them (id, task id).
    pub expand: Vec<(Uuid, String)>,
    /// The run's final state, once every task instance is finished.
    pub run_outcome: Option<RunState>,
}

/// The succeeded branch tasks among `instances`, whose choices the caller loads into [`BranchChoices`].
pub fn branches_to_load<'a>(dag: &'a Dag, instances: &[InstanceState]) -> Vec<&'a str> {
    let succeeded: HashSet<&str> =
        instances.iter().filter(|i| i.state == TaskState::Success).map(|i| i.task_id.as_str()).collect();
    dag.tasks
        .iter()
        .filter(|t| t.operator.is_branch() && succeeded.contains(t.task_id.as_str()))
        .map(|t| t.task_id.as_str())
        .collect()
}

/// Applies branch choices and trigger rules in topological order, so a skip
/// or an `upstream_failed` cascades through the whole run in one pass.
///
/// Only task instances in state `none` are decided, so each is scheduled at
/// most once even when its rule (`always`, `one_success`, …) lets it run
/// before all its upstreams finished. A task with an upstream missing from
/// `instances` is left alone. Every instance of a mapped upstream counts, as
/// in Airflow; a mapped task's placeholder whose rule is met is expanded by
/// the caller. As Airflow's branch operator does, a succeeded
/// branch task skips each direct downstream task that is neither chosen nor
/// downstream of a chosen task; tasks it lists that are not direct
/// downstreams are not run by the choice. The run ends once every task is
/// finished: `failed` if a leaf task failed or was upstream_failed, else `success`.
pub fn decide(dag: &CachedDag, instances: &[InstanceState], choices: &BranchChoices) -> Decisions {
    let mut by_task: HashMap<&str, Vec<(Uuid, i32, TaskState)>> = HashMap::new();
    for i in instances {
        by_task.entry(i.task_id.as_str()).or_default().push((i.id, i.map_index, i.state));
    }
    let (branch_skipped, held) = {
        // Branch tasks are never mapped, so their single instance is their state.
        let single: HashMap<&str, (Uuid, TaskState)> =
            by_task.iter().map(|(task, all)| (*task, (all[0].0, all[0].2))).collect();
        branch_verdicts(dag, &single, choices)
    };
    let mut decisions = Decisions::default();
    for task in &dag.tasks {
        let Some(own) = by_task.get(task.task_id.as_str()) else { continue };
        let waiting: Vec<(Uuid, i32)> =
            own.iter().filter(|(_, _, state)| *state == TaskState::None).map(|(id, index, _)| (*id, *index)).collect();
        if waiting.is_empty() {
            continue;
        }
        // An upstream that was not loaded is unknown, so the task waits for a full look.
        let Some(upstream) = task
            .upstream
            .iter()
            .map(|up| by_task.get(up.as_str()).map(|all| all.iter().map(|(_, _, s)| *s).collect::<Vec<_>>()))
            .collect::<Option<Vec<Vec<TaskState>>>>()
        else {
            continue;
        };
        let outcome = if branch_skipped.contains(task.task_id.as_str()) {
            TriggerOutcome::Skip
        } else if held.contains(task.task_id.as_str()) {
            TriggerOutcome::Wait
        } else {
            task.trigger_rule.evaluate(UpstreamCounts::of(upstream.into_iter().flatten()))
        };
        let next = match outcome {
            TriggerOutcome::Wait => continue,
            TriggerOutcome::Run => TaskState::Scheduled,
            TriggerOutcome::Skip => TaskState::Skipped,
            TriggerOutcome::UpstreamFailed => TaskState::UpstreamFailed,
        };
        for &(id, map_index) in &waiting {
            match next {
                TaskState::Scheduled if task.expand.is_some() && map_index == -1 => {
                    decisions.expand.push((id, task.task_id.clone()));
                }
                TaskState::Scheduled => decisions.schedule.push(id),
                TaskState::Skipped => decisions.skip.push(id),
                _ => decisions.upstream_failed.push(id),
            }
        }
        if next != TaskState::Scheduled || task.expand.is_none() {
            let own = by_task.get_mut(task.task_id.as_str()).expect("present above");
            for entry in own.iter_mut().filter(|(_, _, state)| *state == TaskState::None) {
                entry.2 = next;
            }
        }
    }
    let all_finished = by_task.values().flatten().all(|(_, _, s)| s.is_finished());
    if all_finished && decisions.expand.is_empty() {
        let leaf_failed = dag
            .leaves
            .iter()
            .filter_map(|leaf| by_task.get(leaf.as_str()))
            .flatten()
            .any(|(_, _, s)| matches!(s, TaskState::Failed | TaskState::UpstreamFailed));
        decisions.run_outcome = Some(if leaf_failed { RunState::Failed } else { RunState::Success });
    }
    decisions
}

/// The tasks succeeded branches skip, and the tasks held until a branch's choice is loaded.
fn branch_verdicts<'a>(
    dag: &'a CachedDag,
    states: &HashMap<&str, (Uuid, TaskState)>,
    choices: &BranchChoices,
) -> (HashSet<&'a str>, HashSet<&'a str>) {
    let mut skipped = HashSet::new();
    let mut held = HashSet::new();
    for branch in dag.tasks.iter().filter(|t| t.operator.is_branch()) {
        let id = branch.task_id.as_str();
        if !matches!(states.get(id), Some((_, TaskState::Success))) {
            continue;
        }
        let direct: Vec<&str> = dag.downstream.get(id).into_iter().flatten().map(String::as_str).collect();
        let Some(chosen) = choices.get(id) else {
            held.extend(direct.iter().copied());
            continue;
        };
        // A direct downstream reached through a chosen task is followed too (Airflow's "empty branch").
        let mut followed: HashSet<&str> = HashSet::new();
        let mut stack: Vec<&str> = chosen.iter().filter_map(|c| dag.task(c)).map(|t| t.task_id.as_str()).collect();
        while let Some(task) = stack.pop() {
            if followed.insert(task) {
                stack.extend(dag.downstream.get(task).into_iter().flatten().map(String::as_str));
            }
        }
        skipped.extend(direct.iter().copied().filter(|d| !followed.contains(d)));
    }
    (skipped, held)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gust_shared::dag::parse_dag_file;

    fn diamond() -> CachedDag {
        CachedDag::new(parse_dag_file(
            "diamond.yaml",
            "dag_id: diamond\ntasks:\n  - {id: a, operator: noop}\n  - {id: b, operator: noop, depends_on: [a]}\n  - {id: c, operator: noop, depends_on: [a]}\n  - {id: d, operator: noop, depends_on: [b, c]}\n",
        )
        .unwrap())
    }

    fn no_choices() -> BranchChoices {
        BranchChoices::new()
    }

    fn dag(yaml_tasks: &str) -> CachedDag {
        CachedDag::new(parse_dag_file("test.yaml", &format!("dag_id: test\ntasks:\n{yaml_tasks}")).unwrap())
    }

    fn instances(states: &[(&str, TaskState)]) -> Vec<InstanceState> {
        states
            .iter()
            .map(|(t, s)| InstanceState { id: Uuid::new_v4(), task_id: t.to_string(), map_index: -1, state: *s })
            .collect()
    }

    fn id_of(instances: &[InstanceState], task: &str) -> Uuid {
        instances.iter().find(|i| i.task_id == task).unwrap().id
    }

    #[test]
    fn only_the_root_is_scheduled_in_a_fresh_run() {
        use TaskState::None;
        let tis = instances(&[("a", None), ("b", None), ("c", None), ("d", None)]);
        let d = decide(&diamond(), &tis, &no_choices());
        assert_eq!(d.schedule, vec![id_of(&tis, "a")]);
        assert_eq!(d.run_outcome, Option::None);
    }

    #[test]
    fn a_join_waits_for_every_upstream() {
        use TaskState::*;
        let tis = instances(&[("a", Success), ("b", Success), ("c", Running), ("d", None)]);
        let d = decide(&diamond(), &tis, &no_choices());
        assert!(d.schedule.is_empty());
        let tis = instances(&[("a", Success), ("b", Success), ("c", Success), ("d", None)]);
        assert_eq!(decide(&diamond(), &tis, &no_choices()).schedule, vec![id_of(&tis, "d")]);
    }

    #[test]
    fn a_failed_task_makes_every_downstream_upstream_failed_in_one_pass() {
        use TaskState::*;
        let tis = instances(&[("a", Failed), ("b", None), ("c", None), ("d", None)]);
        let d = decide(&diamond(), &tis, &no_choices());
        assert_eq!(d.upstream_failed.len(), 3);
        assert_eq!(d.run_outcome, Some(RunState::Failed));
    }

    #[test]
    fn a_failure_on_one_branch_fails_the_join_while_the_other_branch_runs() {
        use TaskState::*;
        let tis = instances(&[("a", Success), ("b", Failed), ("c", Running), ("d", None)]);
        let d = decide(&diamond(), &tis, &no_choices());
        assert_eq!(d.upstream_failed, vec![id_of(&tis, "d")]);
        assert_eq!(d.run_outcome, Option::None, "c is still running");
    }

    #[test]
    fn a_task_whose_upstreams_were_not_loaded_is_left_alone() {
        use TaskState::*;
        // Only b, c and d were loaded: c waits on a, which is unknown here.
        let tis = instances(&[("b", Success), ("c", None), ("d", None)]);
        let d = decide(&diamond(), &tis, &no_choices());
        assert!(d.schedule.is_empty() && d.upstream_failed.is_empty(), "{d:?}");
    }

    #[test]
    fn a_run_succeeds_when_every_task_succeeded() {
        use TaskState::*;
        let tis = instances(&[("a", Success), ("b", Success), ("c", Success), ("d", Success)]);
        assert_eq!(decide(&diamond(), &tis, &no_choices()).run_outcome, Some(RunState::Success));
    }

    fn ids(instances: &[InstanceState], tasks: &[&str]) -> HashSet<Uuid> {
        tasks.iter().map(|t| id_of(instances, t)).collect()
    }

    fn set(decided: &[Uuid]) -> HashSet<Uuid> {
        assert_eq!(decided.iter().collect::<HashSet<_>>().len(), decided.len(), "decided twice: {decided:?}");
        decided.iter().copied().collect()
    }

    #[test]
    fn a_skip_cascades_through_all_success_tasks_in_one_pass() {
        use TaskState::*;
        let tis = instances(&[("a", Skipped), ("b", None), ("c", None), ("d", None)]);
        let d = decide(&diamond(), &tis, &no_choices());
        assert_eq!(set(&d.skip), ids(&tis, &["b", "c", "d"]));
        assert_eq!(d.run_outcome, Some(RunState::Success), "a run whose leaves were skipped succeeded");
    }

    #[test]
    fn all_success_fails_a_task_at_once_even_while_another_upstream_runs() {
        use TaskState::*;
        let tis = instances(&[("a", Success), ("b", UpstreamFailed), ("c", Running), ("d", None)]);
        assert_eq!(set(&decide(&diamond(), &tis, &no_choices()).upstream_failed), ids(&tis, &["d"]));
    }

    const CLEANUP: &str = "
  - {id: work, operator: noop}
  - {id: cleanup, operator: noop, depends_on: [work], trigger_rule: all_done}
";

    #[test]
    fn an_all_done_cleanup_runs_after_a_failure() {
        use TaskState::*;
        let tis = instances(&[("work", Failed), ("cleanup", None)]);
        let d = decide(&dag(CLEANUP), &tis, &no_choices());
        assert_eq!(set(&d.schedule), ids(&tis, &["cleanup"]));
        assert_eq!(d.run_outcome, Option::None);
    }

    #[test]
    fn a_run_succeeds_when_its_leaves_succeeded_even_if_an_inner_task_failed() {
        use TaskState::*;
        let tis = instances(&[("work", Failed), ("cleanup", Success)]);
        assert_eq!(decide(&dag(CLEANUP), &tis, &no_choices()).run_outcome, Some(RunState::Success));
    }

    #[test]
    fn a_run_fails_when_a_leaf_failed_or_was_upstream_failed() {
        use TaskState::*;
        let tis = instances(&[("work", Success), ("cleanup", Failed)]);
        assert_eq!(decide(&dag(CLEANUP), &tis, &no_choices()).run_outcome, Some(RunState::Failed));
        let tis = instances(&[("a", Success), ("b", Failed), ("c", Success), ("d", UpstreamFailed)]);
        assert_eq!(decide(&diamond(), &tis, &no_choices()).run_outcome, Some(RunState::Failed));
    }

    #[test]
    fn a_failed_leaf_fails_the_run_even_when_another_leaf_succeeded() {
        use TaskState::*;
        let fork = dag("
  - {id: a, operator: noop}
  - {id: b, operator: noop, depends_on: [a]}
  - {id: c, operator: noop, depends_on: [a]}
");
        let tis = instances(&[("a", Success), ("b", Failed), ("c", Success)]);
        assert_eq!(decide(&fork, &tis, &no_choices()).run_outcome, Some(RunState::Failed));
    }

    const WATCHED: &str = "
  - {id: slow, operator: noop}
  - {id: fast, operator: noop}
  - {id: alert, operator: noop, depends_on: [slow, fast], trigger_rule: one_failed}
  - {id: audit, operator: noop, depends_on: [slow, fast], trigger_rule: always}
";

    #[test]
    fn a_task_that_may_run_early_is_scheduled_exactly_once() {
        use TaskState::*;
        let watched = dag(WATCHED);
        let tis = instances(&[("slow", Running), ("fast", Failed), ("alert", None), ("audit", None)]);
        let d = decide(&watched, &tis, &no_choices());
        assert_eq!(set(&d.schedule), ids(&tis, &["alert", "audit"]));
        let tis = instances(&[("slow", Success), ("fast", Failed), ("alert", Scheduled), ("audit", Running)]);
        let d = decide(&watched, &tis, &no_choices());
        assert_eq!(d, Decisions::default(), "already scheduled tasks are not decided again");
    }

    #[test]
    fn a_one_failed_task_is_skipped_when_every_upstream_finished_without_failing() {
        use TaskState::*;
        let tis = instances(&[("slow", Success), ("fast", Skipped), ("alert", None), ("audit", Success)]);
        let d = decide(&dag(WATCHED), &tis, &no_choices());
        assert_eq!(set(&d.skip), ids(&tis, &["alert"]));
        assert_eq!(d.run_outcome, Some(RunState::Success));
    }

    /// choose → (left | right); left → join; right → after_right → join;
    /// choose → join directly too (an "empty branch").
    const BRANCHY: &str = "
  - {id: choose, operator: branch, command: echo left}
  - {id: left, operator: noop, depends_on: [choose]}
  - {id: right, operator: noop, depends_on: [choose]}
  - {id: after_right, operator: noop, depends_on: [right]}
  - {id: join, operator: noop, depends_on: [choose, left, after_right], trigger_rule: none_failed_min_one_success}
";

    fn chose(branch: &str, tasks: &[&str]) -> BranchChoices {
        BranchChoices::from([(branch.to_string(), tasks.iter().map(|t| t.to_string()).collect())])
    }

    #[test]
    fn a_branch_skips_the_direct_downstreams_it_did_not_choose_and_the_skip_propagates() {
        use TaskState::*;
        let tis =
            instances(&[("choose", Success), ("left", None), ("right", None), ("after_right", None), ("join", None)]);
        let d = decide(&dag(BRANCHY), &tis, &chose("choose", &["left"]));
        assert_eq!(set(&d.schedule), ids(&tis, &["left"]));
        assert_eq!(set(&d.skip), ids(&tis, &["right", "after_right"]));
        assert!(d.upstream_failed.is_empty() && d.run_outcome.is_none(), "{d:?}");
    }

    #[test]
    fn a_join_after_a_branch_runs_once_the_chosen_path_succeeded() {
        use TaskState::*;
        let tis = instances(&[
            ("choose", Success),
            ("left", Success),
            ("right", Skipped),
            ("after_right", Skipped),
            ("join", None),
        ]);
        let d = decide(&dag(BRANCHY), &tis, &chose("choose", &["left"]));
        assert_eq!(set(&d.schedule), ids(&tis, &["join"]));
    }

    #[test]
    fn a_direct_downstream_reached_through_a_chosen_task_is_not_skipped() {
        use TaskState::*;
        let tis =
            instances(&[("choose", Success), ("left", None), ("right", None), ("after_right", None), ("join", None)]);
        let d = decide(&dag(BRANCHY), &tis, &chose("choose", &["right"]));
        assert_eq!(set(&d.schedule), ids(&tis, &["right"]));
        assert_eq!(set(&d.skip), ids(&tis, &["left"]), "join is downstream of right, so it waits instead");
    }

    #[test]
    fn a_branch_that_chose_nothing_skips_everything_after_it() {
        use TaskState::*;
        let tis =
            instances(&[("choose", Success), ("left", None), ("right", None), ("after_right", None), ("join", None)]);
        let d = decide(&dag(BRANCHY), &tis, &chose("choose", &[]));
        assert_eq!(set(&d.skip), ids(&tis, &["left", "right", "after_right", "join"]));
        assert_eq!(d.run_outcome, Some(RunState::Success));
    }

    #[test]
    fn a_chosen_task_that_is_not_a_direct_downstream_does_not_run() {
        use TaskState::*;
        let tis =
            instances(&[("choose", Success), ("left", None), ("right", None), ("after_right", None), ("join", None)]);
        let d = decide(&dag(BRANCHY), &tis, &chose("choose", &["after_right", "nonexistent"]));
        assert_eq!(set(&d.skip), ids(&tis, &["left", "right", "after_right"]));
        // As in Airflow, join is downstream of a chosen task so the branch spares it; its own rule then runs it.
        assert_eq!(set(&d.schedule), ids(&tis, &["join"]));
    }

    #[test]
    fn the_downstreams_of_a_succeeded_branch_wait_until_its_choice_is_loaded() {
        use TaskState::*;
        let tis =
            instances(&[("choose", Success), ("left", None), ("right", None), ("after_right", None), ("join", None)]);
        let d = decide(&dag(BRANCHY), &tis, &no_choices());
        assert_eq!(d, Decisions::default());
        assert_eq!(branches_to_load(&dag(BRANCHY), &tis), vec!["choose"]);
    }

    #[test]
    fn a_failed_branch_passes_its_failure_on_through_trigger_rules() {
        use TaskState::*;
        let tis =
            instances(&[("choose", Failed), ("left", None), ("right", None), ("after_right", None), ("join", None)]);
        let d = decide(&dag(BRANCHY), &tis, &no_choices());
        assert_eq!(set(&d.upstream_failed), ids(&tis, &["left", "right", "after_right", "join"]));
        assert_eq!(d.run_outcome, Some(RunState::Failed));
        assert!(branches_to_load(&dag(BRANCHY), &tis).is_empty(), "only a succeeded branch has a choice");
    }
}
