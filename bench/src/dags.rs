//! The DAG files the scenarios run, generated as YAML.

use std::fmt::Write;

/// What each task does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// The `noop` operator: succeeds at once, no process.
    Noop,
    /// The `bash` operator running `true`: one shell per task.
    BashTrue,
}

impl Op {
    fn yaml(self) -> &'static str {
        match self {
            Op::Noop => "operator: noop",
            Op::BashTrue => "operator: bash\n    command: \"true\"",
        }
    }
}

/// Id of task `i` out of `n`, zero-padded so the ids sort in order.
pub fn task_id(i: usize, n: usize) -> String {
    let width = n.saturating_sub(1).to_string().len().max(3);
    format!("t{i:0width$}")
}

fn header(dag_id: &str, description: &str, max_active_runs: Option<usize>) -> String {
    let mut yaml = format!(
        "dag_id: {dag_id}\ndescription: {description}\nschedule: null\ntags: [bench]\nmax_active_tasks: {}\n",
        crate::stack::BENCH_POOL_SLOTS
    );
    if let Some(max) = max_active_runs {
        let _ = writeln!(yaml, "max_active_runs: {max}");
    }
    yaml.push_str("tasks:\n");
    yaml
}

/// `n` independent tasks (one layer, no dependencies).
pub fn fanout(dag_id: &str, n: usize, op: Op) -> String {
    let mut yaml = header(dag_id, &format!("{n} independent tasks"), Some(1));
    for i in 0..n {
        let _ = writeln!(yaml, "  - id: {}\n    {}", task_id(i, n), op.yaml());
    }
    yaml
}

/// `n` tasks in a line: task i depends on task i-1.
pub fn chain(dag_id: &str, n: usize, op: Op) -> String {
    let mut yaml = header(dag_id, &format!("{n} tasks in a line"), Some(1));
    for i in 0..n {
        let _ = writeln!(yaml, "  - id: {}\n    {}", task_id(i, n), op.yaml());
        if i > 0 {
            let _ = writeln!(yaml, "    depends_on: [{}]", task_id(i - 1, n));
        }
    }
    yaml
}

/// `a → (width parallel tasks) → z`, all noop.
pub fn diamond(dag_id: &str, width: usize, max_active_runs: Option<usize>) -> String {
    let mut yaml = header(dag_id, &format!("a, {width} parallel tasks, z"), max_active_runs);
    yaml.push_str("  - id: a\n    operator: noop\n");
    let middle: Vec<String> = (0..width).map(|i| format!("m{i}")).collect();
    for id in &middle {
        let _ = writeln!(yaml, "  - id: {id}\n    operator: noop\n    depends_on: [a]");
    }
    let _ = writeln!(yaml, "  - id: z\n    operator: noop\n    depends_on: [{}]", middle.join(", "));
    yaml
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_sort_in_order() {
        assert_eq!(task_id(7, 200), "t007");
        assert_eq!(task_id(9999, 10_000), "t9999");
        assert_eq!(task_id(42, 100_000), "t00042");
    }

    #[test]
    fn chain_links_each_task_to_the_previous_one() {
        let yaml = chain("c", 3, Op::Noop);
        assert!(yaml.contains("  - id: t001\n    operator: noop\n    depends_on: [t000]\n"), "{yaml}");
        assert!(!yaml.contains("depends_on: [t002]"));
    }

    #[test]
    fn diamond_has_width_plus_two_tasks() {
        let yaml = diamond("d", 8, None);
        assert_eq!(yaml.matches("  - id: ").count(), 10);
        assert!(yaml.contains("depends_on: [m0, m1, m2, m3, m4, m5, m6, m7]"));
    }

    #[test]
    fn bash_tasks_run_true() {
        assert!(fanout("f", 1, Op::BashTrue).contains("operator: bash\n    command: \"true\"\n"));
    }
}
