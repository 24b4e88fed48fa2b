//! Property tests of the DAG parser and validator ([`parse_dag_file`]) on
//! untrusted text: arbitrary strings, DAG-shaped YAML built from the DAG
//! file's own vocabulary, and mutations of the seed corpus `tests/corpus/dag/`.
//! proptest on stable rather than cargo-fuzz, which needs nightly (see
//! `crate::test_corpus`).
//!
//! The properties: the parser never panics; a refusal names the file and says
//! what is wrong; an accepted DAG has unique task ids, known upstreams, every
//! task after its upstreams, and survives the JSON round trip it is stored by.

use std::collections::{BTreeMap, HashSet};

use proptest::{prelude::*, sample::select, strategy::ValueTree, test_runner::Config};
use serde_json::{json, Map, Value};

use super::{parse_dag_file, Dag, DagError, KNOWN_OPERATORS};
use crate::test_corpus::{self, mutate, mutation};

const FILE: &str = "dags/prop.yaml";

/// Checks the outcome of one parse; the error says why the property fails.
fn judge(outcome: Result<Dag, DagError>) -> Result<(), String> {
    let dag = match outcome {
        Err(error) => {
            let text = error.to_string();
            if error.file != FILE || error.problem.trim().is_empty() || !text.starts_with(FILE) {
                return Err(format!("a refusal without its file or problem: {text:?}"));
            }
            return Ok(());
        }
        Ok(dag) => dag,
    };
    let mut seen = HashSet::new();
    for task in &dag.tasks {
        if let Some(up) = task.upstream.iter().find(|up| !seen.contains(up.as_str())) {
            return Err(format!("task `{}` comes before its upstream `{up}`", task.task_id));
        }
        if !seen.insert(task.task_id.as_str()) {
            return Err(format!("task id `{}` twice", task.task_id));
        }
    }
    let json = serde_json::to_value(&dag).map_err(|e| format!("the DAG does not serialize: {e}"))?;
    let back: Dag = serde_json::from_value(json).map_err(|e| format!("the stored DAG does not load: {e}"))?;
    if back != dag {
        return Err("the DAG changes through its JSON round trip".into());
    }
    Ok(())
}

const WORDS: &[&str] = &[
    "a",
    "b",
    "t0",
    "t1",
    "noop",
    "bash",
    "echo {{ ds }}",
    "{{ params.x }}",
    "30s",
    "5m",
    "soon",
    "@daily",
    "@once",
    "0 2 * * *",
    "2026-01-01",
    "Europe/Amsterdam",
    "default_pool",
    "all_done",
    "none_failed",
    "",
    " ",
    "-1",
    "0",
    "null",
    "true",
    "é",
    "x\ny",
    "reschedule",
    "poke",
    "GET",
    "SELECT 1",
    "warehouse",
    "/tmp/*.csv",
    "mod:fn",
];

const TOP_FIELDS: &[&str] = &[
    "description",
    "schedule",
    "start_date",
    "end_date",
    "timezone",
    "catchup",
    "max_active_runs",
    "max_active_tasks",
    "params",
    "tags",
    "default_args",
    "owner",
    "dag_idd",
];

const TASK_FIELDS: &[&str] = &[
    "depends_on",
    "expand",
    "queue",
    "retries",
    "retry_delay",
    "retry_exponential_backoff",
    "max_retry_delay",
    "execution_timeout",
    "trigger_rule",
    "pool",
    "pool_slots",
    "priority_weight",
    "command",
    "env",
    "cwd",
    "do_xcom_push",
    "args",
    "endpoint",
    "method",
    "url",
    "sql",
    "conn_id",
    "python_callable",
    "poke_interval",
    "timeout",
    "mode",
    "filepath",
    "external_dag_id",
    "external_task_id",
    "response_check",
    "soft_fail",
];

/// Any JSON value, a few levels deep, from the DAG vocabulary and beyond.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (0u32..5).prop_map(Value::from),
        select(WORDS).prop_map(Value::from),
        "[ -~]{0,10}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(select(WORDS).prop_map(str::to_string), inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A field of a task or DAG: a name from the vocabulary and any value.
fn fields(names: &'static [&'static str], most: usize) -> impl Strategy<Value = BTreeMap<String, Value>> {
    prop::collection::btree_map(select(names).prop_map(str::to_string), value(), 0..most)
}

/// Task fields: mostly none, so that many generated DAGs are valid.
fn task_fields() -> impl Strategy<Value = BTreeMap<String, Value>> {
    prop_oneof![3 => Just(BTreeMap::new()), 1 => fields(TASK_FIELDS, 3)]
}

/// `n` tasks whose ids, upstreams and mapping sources mostly name each other,
/// mostly in an order without cycles.
fn tasks(n: usize) -> impl Strategy<Value = Vec<Value>> {
    let index = move || 0..=n;
    let operator = prop_oneof![
        4 => Just("noop"),
        3 => Just("bash"),
        1 => select(KNOWN_OPERATORS.iter().copied().chain(["word-count", "Bad Name"]).collect::<Vec<_>>()),
    ];
    let task = (
        index(),
        operator,
        prop::collection::vec(index(), 0..3),
        prop::bool::weighted(0.8),
        prop::option::weighted(0.15, prop_oneof![index().prop_map(|t| json!({"xcom": format!("t{t}")})), value()]),
        prop_oneof![3 => Just("echo hi"), 1 => select(WORDS)],
        task_fields(),
    );
    prop::collection::vec(task, n).prop_map(|tasks| {
        tasks
            .into_iter()
            .enumerate()
            .map(|(i, (id, operator, depends_on, acyclic, expand, command, extra))| {
                // Mostly distinct ids, so validation gets past the duplicate check.
                let id = if i % 5 == 4 { format!("t{id}") } else { format!("t{i}") };
                let upstream: Vec<String> =
                    depends_on.into_iter().filter(|j| !acyclic || *j < i).map(|j| format!("t{j}")).collect();
                let mut task = Map::from_iter([("id".to_string(), json!(id)), ("operator".into(), json!(operator))]);
                if !upstream.is_empty() {
                    task.insert("depends_on".into(), json!(upstream));
                }
                if let Some(expand) = expand {
                    task.insert("expand".into(), expand);
                }
                if matches!(operator, "bash" | "branch") {
                    task.insert("command".into(), json!(command));
                }
                task.extend(extra);
                Value::Object(task)
            })
            .collect()
    })
}

/// A DAG file's YAML: a `dag_id`, a few tasks, and a few other top-level fields.
fn dag_yaml() -> impl Strategy<Value = String> {
    (1usize..7)
        .prop_flat_map(|n| {
            let top = prop_oneof![3 => Just(BTreeMap::new()), 1 => fields(TOP_FIELDS, 3)];
            (tasks(n), top, prop::option::weighted(0.1, select(WORDS)))
        })
        .prop_map(|(tasks, extra, dag_id)| {
            let mut dag = Map::from_iter([
                ("dag_id".to_string(), json!(dag_id.unwrap_or("prop"))),
                ("tasks".into(), Value::Array(tasks)),
            ]);
            dag.extend(extra);
            serde_yaml_ng::to_string(&Value::Object(dag)).expect("JSON values serialize as YAML")
        })
}

proptest! {
    #![proptest_config(Config::with_cases(10_000))]

    #[test]
    fn any_text_is_parsed_or_refused_with_a_problem(text in any::<String>()) {
        judge(parse_dag_file(FILE, &text)).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn yaml_like_text_is_parsed_or_refused_with_a_problem(text in "[a-z_:\\- \n\t\\[\\]{}&*!|>'\"#,0-9]{0,120}") {
        judge(parse_dag_file(FILE, &text)).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn a_dag_shaped_file_is_parsed_into_a_well_formed_dag_or_refused_with_a_problem(yaml in dag_yaml()) {
        judge(parse_dag_file(FILE, &yaml)).map_err(|e| TestCaseError::fail(format!("{e}\n{yaml}")))?;
    }

    #[test]
    fn a_mutated_corpus_file_is_parsed_or_refused_with_a_problem(
        file in select(test_corpus::files("dag").into_iter().map(|f| f.bytes).collect::<Vec<_>>()),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let text = String::from_utf8_lossy(&mutate(&file, &mutations)).into_owned();
        judge(parse_dag_file(FILE, &text)).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
    }
}

#[test]
fn the_dag_corpus_parses_or_is_refused_as_its_names_say() {
    let mut wrong = Vec::new();
    for file in test_corpus::files("dag") {
        let outcome = parse_dag_file(FILE, &file.text());
        if let Err(problem) = judge(outcome.clone()) {
            wrong.push(format!("{}: {problem}", file.name));
        }
        match (file.must_pass(), outcome, file.expectation("refused")) {
            (true, Err(error), _) => wrong.push(format!("{} is refused: {error}", file.name)),
            (false, Ok(_), _) => wrong.push(format!("{} is accepted", file.name)),
            (false, Err(error), Some(expected)) if !error.to_string().contains(&expected) => {
                wrong.push(format!("{}: {error}\n  does not say: {expected}", file.name))
            }
            _ => {}
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_dag_shaped_strategy_makes_dags_that_parse_as_well_as_ones_that_do_not() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = dag_yaml();
    let parsed = (0..500)
        .filter(|_| {
            let yaml = strategy.new_tree(&mut runner).expect("a DAG-shaped file").current();
            parse_dag_file(FILE, &yaml).is_ok()
        })
        .count();
    assert!((25..475).contains(&parsed), "{parsed} of 500 DAG-shaped files parse");
}
