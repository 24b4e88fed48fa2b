//! Parsing and validating one YAML DAG file.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde::Deserialize;

use super::{graph::topological_order, Dag, OperatorSpec, Schedule, TaskSpec, KNOWN_OPERATORS};

/// Why a DAG file was rejected: the file, the task if one is at fault, and the problem.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}: {}{problem}", task.as_ref().map(|t| format!("task `{t}`: ")).unwrap_or_default())]
pub struct DagError {
    /// The DAG file.
    pub file: String,
    /// The task at fault, if the problem is in one task.
    pub task: Option<String>,
    /// What is wrong, phrased so the author can fix it.
    pub problem: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDag {
    dag_id: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    schedule: Option<String>,
    #[serde(default)]
    start_date: Option<RawDate>,
    #[serde(default)]
    catchup: bool,
    #[serde(default)]
    max_active_runs: Option<u32>,
    #[serde(default)]
    params: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    default_args: RawTaskDefaults,
    tasks: Vec<RawTask>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawDate {
    DateTime(DateTime<Utc>),
    Date(NaiveDate),
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawTaskDefaults {
    owner: Option<String>,
    queue: Option<String>,
    retries: Option<u32>,
    retry_delay: Option<String>,
    retry_exponential_backoff: Option<bool>,
    max_retry_delay: Option<String>,
    execution_timeout: Option<String>,
}

#[derive(Deserialize)]
struct RawTask {
    id: String,
    operator: String,
    #[serde(default)]
    depends_on: Vec<String>,
    #[serde(flatten)]
    overrides: RawTaskOverrides,
    #[serde(flatten)]
    args: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize, Default)]
struct RawTaskOverrides {
    queue: Option<String>,
    retries: Option<u32>,
    retry_delay: Option<String>,
    retry_exponential_backoff: Option<bool>,
    max_retry_delay: Option<String>,
    execution_timeout: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BashArgs {
    command: String,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    cwd: Option<String>,
}

const DEFAULT_RETRY_DELAY_MS: u64 = 300_000;
const DEFAULT_MAX_ACTIVE_RUNS: u32 = 16;

/// Parses and validates the YAML text of one DAG file; `file` names it in errors.
pub fn parse_dag_file(file: &str, yaml: &str) -> Result<Dag, DagError> {
    let fail = |task: Option<&str>, problem: String| DagError { file: file.into(), task: task.map(Into::into), problem };
    let raw: RawDag = serde_yaml_ng::from_str(yaml).map_err(|e| fail(None, format!("not a valid DAG file: {e}")))?;

    check_identifier(&raw.dag_id).map_err(|p| fail(None, format!("dag_id {p}")))?;
    let schedule = match raw.schedule.as_deref() {
        None | Some("") | Some("@none") | Some("None") => None,
        Some(text) => Some(Schedule::parse(text).map_err(|e| fail(None, e.to_string()))?),
    };
    if schedule.is_some() && raw.start_date.is_none() {
        return Err(fail(None, "a scheduled DAG needs a start_date (e.g. start_date: 2026-01-01)".into()));
    }
    let start_date = match raw.start_date {
        Some(RawDate::DateTime(dt)) => dt,
        Some(RawDate::Date(d)) => Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight exists")),
        None => DateTime::<Utc>::UNIX_EPOCH,
    };
    let max_active_runs = raw.max_active_runs.unwrap_or(DEFAULT_MAX_ACTIVE_RUNS);
    if max_active_runs == 0 {
        return Err(fail(None, "max_active_runs must be at least 1".into()));
    }
    if raw.tasks.is_empty() {
        return Err(fail(None, "a DAG needs at least one task under `tasks:`".into()));
    }
    let defaults = &raw.default_args;
    let default_delay = duration_ms(defaults.retry_delay.as_deref()).map_err(|p| fail(None, format!("default_args.retry_delay: {p}")))?;
    let default_max_delay =
        duration_ms(defaults.max_retry_delay.as_deref()).map_err(|p| fail(None, format!("default_args.max_retry_delay: {p}")))?;
    let default_timeout =
        duration_ms(defaults.execution_timeout.as_deref()).map_err(|p| fail(None, format!("default_args.execution_timeout: {p}")))?;

    let mut seen = HashSet::new();
    for task in &raw.tasks {
        check_identifier(&task.id).map_err(|p| fail(Some(&task.id), format!("id {p}")))?;
        if !seen.insert(task.id.as_str()) {
            return Err(fail(Some(&task.id), "duplicate task id; each task id must be unique in its DAG".into()));
        }
    }

    let mut tasks = Vec::with_capacity(raw.tasks.len());
    for task in &raw.tasks {
        let at = |problem: String| fail(Some(&task.id), problem);
        for up in &task.depends_on {
            if !seen.contains(up.as_str()) {
                return Err(at(format!("depends_on names unknown task `{up}`")));
            }
            if up == &task.id {
                return Err(at("depends on itself".into()));
            }
        }
        let o = &task.overrides;
        let queue = o.queue.clone().or_else(|| defaults.queue.clone()).unwrap_or_else(|| "default".into());
        check_identifier(&queue).map_err(|p| at(format!("queue {p}")))?;
        let retry_delay_ms = duration_ms(o.retry_delay.as_deref()).map_err(|p| at(format!("retry_delay: {p}")))?;
        let max_retry_delay_ms = duration_ms(o.max_retry_delay.as_deref()).map_err(|p| at(format!("max_retry_delay: {p}")))?;
        let execution_timeout_ms =
            duration_ms(o.execution_timeout.as_deref()).map_err(|p| at(format!("execution_timeout: {p}")))?;
        if execution_timeout_ms.or(default_timeout) == Some(0) {
            return Err(at("execution_timeout must be longer than 0s".into()));
        }
        tasks.push(TaskSpec {
            task_id: task.id.clone(),
            operator: operator_spec(&task.operator, &task.args).map_err(at)?,
            upstream: task.depends_on.clone(),
            queue,
            retries: o.retries.or(defaults.retries).unwrap_or(0),
            retry_delay_ms: retry_delay_ms.or(default_delay).unwrap_or(DEFAULT_RETRY_DELAY_MS),
            retry_exponential_backoff: o.retry_exponential_backoff.or(defaults.retry_exponential_backoff).unwrap_or(false),
            max_retry_delay_ms: max_retry_delay_ms.or(default_max_delay),
            execution_timeout_ms: execution_timeout_ms.or(default_timeout),
        });
    }

    let nodes: Vec<(&str, Vec<&str>)> =
        tasks.iter().map(|t| (t.task_id.as_str(), t.upstream.iter().map(String::as_str).collect())).collect();
    let order: Vec<String> = match topological_order(&nodes) {
        Ok(order) => order.into_iter().map(str::to_string).collect(),
        Err(cycle) => return Err(fail(Some(cycle[0]), format!("dependency cycle: {}", cycle.join(" -> ")))),
    };
    tasks.sort_by_key(|t| order.iter().position(|id| id == &t.task_id));

    Ok(Dag {
        dag_id: raw.dag_id,
        description: raw.description,
        schedule,
        start_date,
        catchup: raw.catchup,
        max_active_runs,
        params: raw.params,
        tags: raw.tags,
        owners: vec![defaults.owner.clone().unwrap_or_else(|| "gust".into())],
        tasks,
    })
}

fn operator_spec(operator: &str, args: &serde_json::Map<String, serde_json::Value>) -> Result<OperatorSpec, String> {
    match operator {
        "noop" => match args.keys().next() {
            Some(key) => Err(format!("operator `noop` takes no arguments, found `{key}`")),
            None => Ok(OperatorSpec::Noop),
        },
        "bash" => {
            let bash: BashArgs = serde_json::from_value(serde_json::Value::Object(args.clone()))
                .map_err(|e| format!("operator `bash`: {e}"))?;
            if bash.command.trim().is_empty() {
                return Err("operator `bash`: command is empty".into());
            }
            Ok(OperatorSpec::Bash { command: bash.command, env: bash.env, cwd: bash.cwd })
        }
        other => Err(format!("unknown operator `{other}`; known operators: {}", KNOWN_OPERATORS.join(", "))),
    }
}

fn duration_ms(text: Option<&str>) -> Result<Option<u64>, String> {
    let Some(text) = text else { return Ok(None) };
    let parsed = humantime::parse_duration(text.trim())
        .map_err(|e| format!("bad duration `{text}` ({e}); write e.g. 30s, 5m, 1h 30m"))?;
    Ok(Some(u64::try_from(parsed.as_millis()).unwrap_or(u64::MAX)))
}

fn check_identifier(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 250
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!("`{id}` must be 1-250 characters of letters, digits, '_', '-' or '.'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Dag, DagError> {
        parse_dag_file("dags/test.yaml", yaml)
    }

    const DIAMOND: &str = r#"
dag_id: diamond
schedule: "@daily"
start_date: 2026-01-01
params: {region: eu}
default_args: {retries: 2, retry_delay: 30s, execution_timeout: 10m, queue: etl}
tasks:
  - id: d
    operator: noop
    depends_on: [b, c]
  - id: b
    operator: bash
    command: echo b
    depends_on: [a]
  - id: c
    operator: bash
    command: echo c
    depends_on: [a]
    queue: gpu
    retries: 0
  - id: a
    operator: noop
"#;

    #[test]
    fn a_valid_dag_gets_defaults_and_topological_order() {
        let dag = parse(DIAMOND).unwrap();
        assert_eq!(dag.dag_id, "diamond");
        let ids: Vec<_> = dag.tasks.iter().map(|t| t.task_id.as_str()).collect();
        assert_eq!(ids.first(), Some(&"a"));
        assert_eq!(ids.last(), Some(&"d"));
        let b = dag.task("b").unwrap();
        assert_eq!((b.retries, b.retry_delay_ms, b.execution_timeout_ms), (2, 30_000, Some(600_000)));
        assert_eq!(b.queue, "etl");
        let c = dag.task("c").unwrap();
        assert_eq!((c.retries, c.queue.as_str()), (0, "gpu"));
        assert_eq!(c.operator, OperatorSpec::Bash { command: "echo c".into(), env: BTreeMap::new(), cwd: None });
    }

    fn problem_of(yaml: &str) -> String {
        parse(yaml).unwrap_err().to_string()
    }

    #[test]
    fn a_cycle_is_rejected_with_its_path() {
        let err = problem_of(
            "dag_id: x\ntasks:\n  - {id: a, operator: noop, depends_on: [c]}\n  - {id: b, operator: noop, depends_on: [a]}\n  - {id: c, operator: noop, depends_on: [b]}\n",
        );
        assert!(err.starts_with("dags/test.yaml: task `"), "{err}");
        assert!(err.contains("dependency cycle: "), "{err}");
        assert!(err.contains("a -> b -> c -> a") || err.contains("b -> c -> a -> b") || err.contains("c -> a -> b -> c"), "{err}");
    }

    #[test]
    fn an_unknown_upstream_names_the_task_and_the_missing_id() {
        let err = problem_of("dag_id: x\ntasks:\n  - {id: load, operator: noop, depends_on: [extarct]}\n");
        assert_eq!(err, "dags/test.yaml: task `load`: depends_on names unknown task `extarct`");
    }

    #[test]
    fn a_duplicate_task_id_is_rejected() {
        let err = problem_of("dag_id: x\ntasks:\n  - {id: a, operator: noop}\n  - {id: a, operator: noop}\n");
        assert!(err.contains("task `a`: duplicate task id"), "{err}");
    }

    #[test]
    fn an_unknown_operator_lists_the_known_ones() {
        let err = problem_of("dag_id: x\ntasks:\n  - {id: a, operator: spark}\n");
        assert!(err.contains("task `a`: unknown operator `spark`; known operators: noop, bash"), "{err}");
    }

    #[test]
    fn a_bad_duration_names_the_field_and_the_value() {
        let err = problem_of("dag_id: x\ntasks:\n  - {id: a, operator: noop, retry_delay: soon}\n");
        assert!(err.contains("task `a`: retry_delay: bad duration `soon`"), "{err}");
        let err = problem_of("dag_id: x\ndefault_args: {execution_timeout: 5 parsecs}\ntasks:\n  - {id: a, operator: noop}\n");
        assert!(err.contains("default_args.execution_timeout: bad duration"), "{err}");
    }

    #[test]
    fn a_bad_cron_is_rejected() {
        let err = problem_of("dag_id: x\nschedule: '99 * * * *'\nstart_date: 2026-01-01\ntasks:\n  - {id: a, operator: noop}\n");
        assert!(err.contains("bad schedule `99 * * * *`"), "{err}");
    }

    #[test]
    fn operator_arguments_are_checked() {
        let err = problem_of("dag_id: x\ntasks:\n  - {id: a, operator: bash}\n");
        assert!(err.contains("task `a`: operator `bash`: missing field `command`"), "{err}");
        let err = problem_of("dag_id: x\ntasks:\n  - {id: a, operator: bash, command: ls, comand: typo}\n");
        assert!(err.contains("unknown field `comand`"), "{err}");
        let err = problem_of("dag_id: x\ntasks:\n  - {id: a, operator: noop, command: ls}\n");
        assert!(err.contains("takes no arguments"), "{err}");
    }

    #[test]
    fn broken_yaml_and_unknown_top_level_keys_are_rejected() {
        assert!(problem_of("dag_id: [unclosed").contains("not a valid DAG file"));
        assert!(problem_of("dag_id: x\nshedule: '@daily'\ntasks: []\n").contains("unknown field `shedule`"));
        assert!(problem_of("dag_id: x\ntasks: []\n").contains("at least one task"));
        assert!(problem_of("dag_id: 'bad id'\ntasks:\n  - {id: a, operator: noop}\n").contains("dag_id `bad id`"));
    }

    #[test]
    fn a_scheduled_dag_needs_a_start_date() {
        assert!(problem_of("dag_id: x\nschedule: '@daily'\ntasks:\n  - {id: a, operator: noop}\n").contains("start_date"));
    }

    #[test]
    fn the_model_survives_a_json_round_trip() {
        let dag = parse(DIAMOND).unwrap();
        let json = serde_json::to_value(&dag).unwrap();
        assert_eq!(serde_json::from_value::<Dag>(json).unwrap(), dag);
    }
}
