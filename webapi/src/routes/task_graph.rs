//! Walking a DAG definition's `upstream` edges, for the routes that act on a
//! task and its upstream or downstream tasks (clear, mark).

use std::collections::{HashMap, HashSet};

use gust_shared::dag::TaskSpec;

/// Which relatives of the chosen tasks to add.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Include {
    /// Every task the chosen ones depend on, directly or not.
    pub(crate) upstream: bool,
    /// Every task that depends on the chosen ones, directly or not.
    pub(crate) downstream: bool,
}

/// The chosen tasks plus the relatives `include` asks for, in the definition's
/// (topological) order. Like Airflow, the union of the ancestors and the
/// descendants of the chosen tasks: not the descendants of their ancestors.
/// Chosen ids that are not in `tasks` are ignored (callers check them first).
pub(crate) fn with_relatives(tasks: &[TaskSpec], chosen: &[&str], include: Include) -> Vec<String> {
    let mut picked = relatives(tasks, chosen, include);
    picked.extend(chosen.iter().map(|id| id.to_string()));
    tasks.iter().filter(|t| picked.contains(&t.task_id)).map(|t| t.task_id.clone()).collect()
}

/// The ancestors and/or descendants of the chosen tasks (a chosen task is in
/// it only when it is itself a relative of another chosen task).
pub(crate) fn relatives(tasks: &[TaskSpec], chosen: &[&str], include: Include) -> HashSet<String> {
    let mut found: HashSet<&str> = HashSet::new();
    if include.upstream {
        let upstream: HashMap<&str, Vec<&str>> =
            tasks.iter().map(|t| (t.task_id.as_str(), t.upstream.iter().map(String::as_str).collect())).collect();
        found.extend(reachable(&upstream, chosen));
    }
    if include.downstream {
        let mut downstream: HashMap<&str, Vec<&str>> = HashMap::new();
        for task in tasks {
            for parent in &task.upstream {
                downstream.entry(parent.as_str()).or_default().push(task.task_id.as_str());
            }
        }
        found.extend(reachable(&downstream, chosen));
    }
    found.into_iter().map(str::to_string).collect()
}

/// Every node reachable from `start` along `edges`, `start` excluded unless on a path back to itself.
fn reachable<'a>(edges: &HashMap<&'a str, Vec<&'a str>>, start: &[&'a str]) -> HashSet<&'a str> {
    let mut seen = HashSet::new();
    let mut stack: Vec<&str> = start.to_vec();
    while let Some(node) = stack.pop() {
        for &next in edges.get(node).map(Vec::as_slice).unwrap_or_default() {
            if seen.insert(next) {
                stack.push(next);
            }
        }
    }
    seen
}

/// The chosen task ids the definition does not have, in the order given.
pub(crate) fn unknown_tasks<'a>(tasks: &[TaskSpec], chosen: &[&'a str]) -> Vec<&'a str> {
    let known: HashSet<&str> = tasks.iter().map(|t| t.task_id.as_str()).collect();
    let mut named = HashSet::new();
    chosen.iter().copied().filter(|id| !known.contains(id) && named.insert(*id)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `a → b → d`, `a → c → d`, `d → e`, and a lone `x → y`.
    fn diamond() -> Vec<TaskSpec> {
        let yaml = r#"
dag_id: diamond
start_date: 2026-01-01
tasks:
  - {id: a, operator: noop}
  - {id: b, operator: noop, depends_on: [a]}
  - {id: c, operator: noop, depends_on: [a]}
  - {id: d, operator: noop, depends_on: [b, c]}
  - {id: e, operator: noop, depends_on: [d]}
  - {id: x, operator: noop}
  - {id: y, operator: noop, depends_on: [x]}
"#;
        gust_shared::dag::parse_dag_file("dags/diamond.yaml", yaml).expect("the test DAG parses").tasks
    }

    fn walk(chosen: &[&str], upstream: bool, downstream: bool) -> Vec<String> {
        with_relatives(&diamond(), chosen, Include { upstream, downstream })
    }

    #[test]
    fn without_relatives_only_the_chosen_tasks_are_picked() {
        assert_eq!(walk(&["d"], false, false), ["d"]);
    }

    #[test]
    fn downstream_follows_every_path_to_the_end() {
        assert_eq!(walk(&["b"], false, true), ["b", "d", "e"]);
        assert_eq!(walk(&["a"], false, true), ["a", "b", "c", "d", "e"]);
        assert_eq!(walk(&["e"], false, true), ["e"]);
    }

    #[test]
    fn upstream_follows_every_path_to_the_roots() {
        assert_eq!(walk(&["d"], true, false), ["a", "b", "c", "d"]);
        assert_eq!(walk(&["b"], true, false), ["a", "b"]);
    }

    #[test]
    fn both_directions_are_ancestors_and_descendants_not_siblings() {
        assert_eq!(walk(&["b"], true, true), ["a", "b", "d", "e"], "c is a sibling of b, not a relative");
    }

    #[test]
    fn several_chosen_tasks_come_back_in_definition_order_without_duplicates() {
        assert_eq!(walk(&["y", "b"], false, true), ["b", "d", "e", "y"]);
        assert_eq!(walk(&["d", "b"], true, false), ["a", "b", "c", "d"]);
    }

    #[test]
    fn a_chosen_task_is_its_own_relative_only_when_another_chosen_task_reaches_it() {
        let found = relatives(&diamond(), &["a", "d"], Include { upstream: false, downstream: true });
        let mut found: Vec<_> = found.into_iter().collect();
        found.sort();
        assert_eq!(found, ["b", "c", "d", "e"]);
    }

    #[test]
    fn unknown_task_ids_are_named_once_each() {
        assert_eq!(unknown_tasks(&diamond(), &["ghost", "a", "z", "ghost"]), ["ghost", "z"]);
        assert!(unknown_tasks(&diamond(), &["a", "e"]).is_empty());
        assert!(walk(&["ghost"], true, true).is_empty());
    }
}
