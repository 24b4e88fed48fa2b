//! `gust dags show`: a DAG's tasks and dependencies as text, Graphviz or Mermaid.

use std::fmt::Write as _;

use gust_shared::dag::{Dag, ExpandSource, TaskSpec, TriggerRule};

use crate::args::ShowFormat;

/// The drawing of `dag` in `format`, ending with a newline.
pub fn draw(dag: &Dag, format: ShowFormat) -> String {
    match format {
        ShowFormat::Ascii => ascii(dag),
        ShowFormat::Dot => dot(dag),
        ShowFormat::Mermaid => mermaid(dag),
    }
}

/// Each task's level: 0 without upstreams, else one more than its deepest upstream.
fn levels(dag: &Dag) -> Vec<usize> {
    // Tasks are in topological order, so every upstream's level is known before it is needed.
    let mut levels: Vec<usize> = Vec::with_capacity(dag.tasks.len());
    for task in &dag.tasks {
        let level = task
            .upstream
            .iter()
            .filter_map(|up| dag.tasks.iter().position(|t| &t.task_id == up))
            .filter_map(|i| levels.get(i))
            .map(|l| l + 1)
            .max()
            .unwrap_or(0);
        levels.push(level);
    }
    levels
}

/// What the drawing says about a task besides its id: operator, trigger rule, mapping, queue.
fn notes(task: &TaskSpec) -> String {
    let mut notes = vec![task.operator.name().to_string()];
    if task.trigger_rule != TriggerRule::default() {
        notes.push(format!("trigger_rule {}", task.trigger_rule.as_str()));
    }
    match &task.expand {
        Some(ExpandSource::Xcom(source)) => notes.push(format!("mapped over {source}'s XCom")),
        Some(ExpandSource::Param(name)) => notes.push(format!("mapped over params.{name}")),
        Some(ExpandSource::Items(items)) => notes.push(format!("mapped over {} items", items.len())),
        None => {}
    }
    if task.queue != "default" {
        notes.push(format!("queue {}", task.queue));
    }
    notes.join(", ")
}

fn ascii(dag: &Dag) -> String {
    let levels = levels(dag);
    let schedule = dag.schedule.as_ref().map_or("manual only".to_string(), |s| format!("schedule {}", s.text));
    let mut out = format!("{} ({schedule}, {} tasks)\n", dag.dag_id, dag.tasks.len());
    let mut order: Vec<usize> = (0..dag.tasks.len()).collect();
    order.sort_by_key(|&i| levels[i]);
    let rows: Vec<(String, &TaskSpec)> = order
        .into_iter()
        .map(|i| {
            (format!("{}{} [{}]", "  ".repeat(levels[i]), dag.tasks[i].task_id, notes(&dag.tasks[i])), &dag.tasks[i])
        })
        .collect();
    let width = rows.iter().map(|(label, _)| label.chars().count()).max().unwrap_or(0);
    for (label, task) in rows {
        let line = match task.upstream.is_empty() {
            true => label,
            false => format!("{label:width$}  <- {}", task.upstream.join(", ")),
        };
        let _ = writeln!(out, "{line}");
    }
    out
}

fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

fn dot(dag: &Dag) -> String {
    let mut out = format!("digraph {} {{\n  rankdir=LR;\n  node [shape=box];\n", quoted(&dag.dag_id));
    for task in &dag.tasks {
        let label = format!("{}\\n{}", task.task_id, notes(task));
        let _ = writeln!(out, "  {} [label={}];", quoted(&task.task_id), quoted(&label).replace("\\\\n", "\\n"));
    }
    for task in &dag.tasks {
        for up in &task.upstream {
            let _ = writeln!(out, "  {} -> {};", quoted(up), quoted(&task.task_id));
        }
    }
    out.push_str("}\n");
    out
}

fn mermaid(dag: &Dag) -> String {
    // Task ids may hold `.` and `-`, which Mermaid reads as syntax: nodes are t0, t1, … with the id as label.
    let node = |task_id: &str| dag.tasks.iter().position(|t| t.task_id == task_id).map(|i| format!("t{i}"));
    let mut out = String::from("flowchart LR\n");
    for (i, task) in dag.tasks.iter().enumerate() {
        let label = format!("{} ({})", task.task_id, notes(task)).replace('"', "#quot;");
        let _ = writeln!(out, "  t{i}[\"{label}\"]");
    }
    for task in &dag.tasks {
        for up in &task.upstream {
            if let (Some(from), Some(to)) = (node(up), node(&task.task_id)) {
                let _ = writeln!(out, "  {from} --> {to}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use gust_shared::dag::parse_dag_file;

    use super::*;

    const DAG: &str = "dag_id: d\ntasks:\n  - {id: a, operator: noop}\n  - {id: b.x, operator: bash, command: ls, depends_on: [a]}\n  - {id: c, operator: noop, depends_on: [a, b.x], trigger_rule: all_done}\n";

    #[test]
    fn ascii_indents_each_task_by_its_level_and_names_its_upstreams() {
        let dag = parse_dag_file("d.yaml", DAG).unwrap();
        assert_eq!(
            draw(&dag, ShowFormat::Ascii),
            "d (manual only, 3 tasks)\na [noop]\n  b.x [bash]                         <- a\n    c [noop, trigger_rule all_done]  <- a, b.x\n"
        );
    }

    #[test]
    fn dot_and_mermaid_have_one_edge_per_dependency() {
        let dag = parse_dag_file("d.yaml", DAG).unwrap();
        let dot = draw(&dag, ShowFormat::Dot);
        assert!(dot.contains("  \"a\" -> \"b.x\";\n  \"a\" -> \"c\";\n  \"b.x\" -> \"c\";\n"), "{dot}");
        let mermaid = draw(&dag, ShowFormat::Mermaid);
        assert!(mermaid.contains("  t1[\"b.x (bash)\"]\n"), "{mermaid}");
        assert!(mermaid.ends_with("  t0 --> t1\n  t0 --> t2\n  t1 --> t2\n"), "{mermaid}");
    }
}
