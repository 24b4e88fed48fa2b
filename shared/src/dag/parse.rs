//! Parsing and validating one YAML DAG file. The text is held to the limits
//! of [`super::limits`] before it is deserialized, so no DAG file makes the
//! parser allocate or work beyond them; every refusal is a [`DagError`]
//! naming the file, the problem and the fix.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use super::{
    assets::{self, AssetCondition},
    graph::topological_order,
    limits::{check_yaml, LimitError, MAX_TASKS},
    Dag, ExpandSource, OperatorSpec, Params, Schedule, TaskSpec, TriggerRule, DEFAULT_MAX_ACTIVE_TASKS, DEFAULT_POOL,
    KNOWN_OPERATORS,
};

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
    schedule: Option<serde_json::Value>,
    #[serde(default)]
    start_date: Option<String>,
    #[serde(default)]
    end_date: Option<String>,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    catchup: bool,
    #[serde(default)]
    max_active_runs: Option<u32>,
    #[serde(default)]
    max_active_tasks: Option<u32>,
    #[serde(default)]
    params: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    is_paused_upon_creation: Option<bool>,
    #[serde(default)]
    default_args: RawTaskDefaults,
    tasks: Vec<RawTask>,
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
    trigger_rule: Option<String>,
    pool: Option<serde_json::Value>,
    pool_slots: Option<serde_json::Value>,
    priority_weight: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawTask {
    id: String,
    operator: String,
    #[serde(default)]
    depends_on: Vec<String>,
    #[serde(default)]
    expand: Option<serde_json::Value>,
    #[serde(default)]
    outlets: Option<serde_json::Value>,
    #[serde(default)]
    inlets: Option<serde_json::Value>,
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
    trigger_rule: Option<String>,
    pool: Option<serde_json::Value>,
    pool_slots: Option<serde_json::Value>,
    priority_weight: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BashArgs {
    command: String,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    cwd: Option<String>,
    #[serde(default)]
    do_xcom_push: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BranchArgs {
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
    let fail =
        |task: Option<&str>, problem: String| DagError { file: file.into(), task: task.map(Into::into), problem };
    check_yaml(yaml).map_err(|e| fail(None, e.to_string()))?;
    let raw: RawDag = serde_yaml_ng::from_str(yaml).map_err(|e| fail(None, format!("not a valid DAG file: {e}")))?;
    if raw.tasks.len() > MAX_TASKS {
        return Err(fail(None, LimitError::TooManyTasks { count: raw.tasks.len() }.to_string()));
    }

    check_identifier(&raw.dag_id).map_err(|p| fail(None, format!("dag_id {p}")))?;
    let asset_schedule = asset_schedule(raw.schedule.as_ref()).map_err(|p| fail(None, p))?;
    let schedule = match raw.schedule {
        None | Some(serde_json::Value::Null) => None,
        Some(_) if asset_schedule.is_some() => None,
        Some(serde_json::Value::String(text)) if matches!(text.trim(), "" | "@none" | "None") => None,
        Some(value) => Some(Schedule::from_value(&value).map_err(|e| fail(None, e.to_string()))?),
    };
    if schedule.is_some() && raw.start_date.is_none() {
        return Err(fail(None, "a scheduled DAG needs a start_date (e.g. start_date: 2026-01-01)".into()));
    }
    let timezone = match raw.timezone.as_deref() {
        None => Tz::UTC,
        Some(name) => {
            name.trim().parse::<Tz>().map_err(|_| fail(None, format!("unknown timezone `{name}`; {TZ_HINT}")))?
        }
    };
    let start_date = match raw.start_date.as_deref() {
        Some(text) => date_in(text, timezone).map_err(|p| fail(None, format!("start_date: {p}")))?,
        None => DateTime::<Utc>::UNIX_EPOCH,
    };
    let end_date = raw.end_date.as_deref().map(|text| date_in(text, timezone)).transpose();
    let end_date = end_date.map_err(|p| fail(None, format!("end_date: {p}")))?;
    if end_date.is_some_and(|end_date| end_date < start_date) {
        return Err(fail(None, "end_date is before start_date".into()));
    }
    let max_active_runs = raw.max_active_runs.unwrap_or(DEFAULT_MAX_ACTIVE_RUNS);
    if max_active_runs == 0 {
        return Err(fail(None, "max_active_runs must be at least 1".into()));
    }
    let max_active_tasks = raw.max_active_tasks.unwrap_or(DEFAULT_MAX_ACTIVE_TASKS);
    if max_active_tasks == 0 {
        return Err(fail(None, "max_active_tasks must be at least 1".into()));
    }
    let params = Params::declare(raw.params).map_err(|problem| fail(None, problem))?;
    if let Some(name) = params.required().next().filter(|_| schedule.is_some() || asset_schedule.is_some()) {
        return Err(fail(
            None,
            format!(
                "param `{name}` has no default, but scheduled runs have no conf to set it; \
                 give it a default or make the DAG manual-only with `schedule: null`"
            ),
        ));
    }
    if raw.tasks.is_empty() {
        return Err(fail(None, "a DAG needs at least one task under `tasks:`".into()));
    }
    let defaults = &raw.default_args;
    let default_delay = duration_ms(defaults.retry_delay.as_deref())
        .map_err(|p| fail(None, format!("default_args.retry_delay: {p}")))?;
    let default_max_delay = duration_ms(defaults.max_retry_delay.as_deref())
        .map_err(|p| fail(None, format!("default_args.max_retry_delay: {p}")))?;
    let default_timeout = duration_ms(defaults.execution_timeout.as_deref())
        .map_err(|p| fail(None, format!("default_args.execution_timeout: {p}")))?;
    let default_trigger_rule = parse_trigger_rule(defaults.trigger_rule.as_deref())
        .map_err(|p| fail(None, format!("default_args.trigger_rule: {p}")))?;
    let default_pool = pool_name(defaults.pool.as_ref()).map_err(|p| fail(None, format!("default_args.pool: {p}")))?;
    let default_pool_slots =
        pool_slots(defaults.pool_slots.as_ref()).map_err(|p| fail(None, format!("default_args.pool_slots: {p}")))?;
    let default_priority_weight = priority_weight(defaults.priority_weight.as_ref())
        .map_err(|p| fail(None, format!("default_args.priority_weight: {p}")))?;

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
        let max_retry_delay_ms =
            duration_ms(o.max_retry_delay.as_deref()).map_err(|p| at(format!("max_retry_delay: {p}")))?;
        let execution_timeout_ms =
            duration_ms(o.execution_timeout.as_deref()).map_err(|p| at(format!("execution_timeout: {p}")))?;
        if execution_timeout_ms.or(default_timeout) == Some(0) {
            return Err(at("execution_timeout must be longer than 0s".into()));
        }
        let trigger_rule =
            parse_trigger_rule(o.trigger_rule.as_deref()).map_err(|p| at(format!("trigger_rule: {p}")))?;
        let pool = pool_name(o.pool.as_ref()).map_err(|p| at(format!("pool: {p}")))?;
        let slots = pool_slots(o.pool_slots.as_ref()).map_err(|p| at(format!("pool_slots: {p}")))?;
        let weight = priority_weight(o.priority_weight.as_ref()).map_err(|p| at(format!("priority_weight: {p}")))?;
        let expand =
            task.expand.as_ref().map(ExpandSource::from_value).transpose().map_err(|p| at(format!("expand: {p}")))?;
        match &expand {
            Some(ExpandSource::Xcom(source)) if !seen.contains(source.as_str()) || source == &task.id => {
                return Err(at(format!("expand: xcom names `{source}`, which is not another task of this DAG")));
            }
            Some(ExpandSource::Param(name)) if params.get(name).is_none() => {
                return Err(at(format!("expand: param `{name}` is not declared in the DAG's params")));
            }
            Some(_) if task.operator == "branch" => {
                return Err(at("a branch task cannot be mapped with expand".into()));
            }
            _ => {}
        }
        let mut upstream = task.depends_on.clone();
        if let Some(ExpandSource::Xcom(source)) = &expand {
            // Mapping over a task's XCom depends on that task, as an XComArg does in Airflow.
            if !upstream.contains(source) {
                upstream.push(source.clone());
            }
        }
        let outlets = asset_list(task.outlets.as_ref())
            .and_then(assets::parse_outlets)
            .map_err(|p| at(format!("outlets: {p}")))?;
        let inlets =
            asset_list(task.inlets.as_ref()).and_then(assets::parse_inlets).map_err(|p| at(format!("inlets: {p}")))?;
        tasks.push(TaskSpec {
            task_id: task.id.clone(),
            operator: operator_spec(&task.operator, &task.args).map_err(at)?,
            upstream,
            queue,
            retries: o.retries.or(defaults.retries).unwrap_or(0),
            retry_delay_ms: retry_delay_ms.or(default_delay).unwrap_or(DEFAULT_RETRY_DELAY_MS),
            retry_exponential_backoff: o
                .retry_exponential_backoff
                .or(defaults.retry_exponential_backoff)
                .unwrap_or(false),
            max_retry_delay_ms: max_retry_delay_ms.or(default_max_delay),
            execution_timeout_ms: execution_timeout_ms.or(default_timeout),
            trigger_rule: trigger_rule.or(default_trigger_rule).unwrap_or_default(),
            pool: pool.or_else(|| default_pool.clone()).unwrap_or_else(|| DEFAULT_POOL.into()),
            pool_slots: slots.or(default_pool_slots).unwrap_or(1),
            priority_weight: weight.or(default_priority_weight).unwrap_or(1),
            expand,
            outlets: outlets.assets,
            outlet_aliases: outlets.aliases,
            inlets,
        });
    }
    let named = asset_schedule.iter().flat_map(AssetCondition::assets);
    assets::check_consistent(named.chain(tasks.iter().flat_map(|t| t.outlets.iter().chain(&t.inlets))))
        .map_err(|p| fail(None, p))?;

    let nodes: Vec<(&str, Vec<&str>)> =
        tasks.iter().map(|t| (t.task_id.as_str(), t.upstream.iter().map(String::as_str).collect())).collect();
    let order: Vec<String> = match topological_order(&nodes) {
        Ok(order) => order.into_iter().map(str::to_string).collect(),
        Err(cycle) => return Err(fail(Some(cycle[0]), format!("dependency cycle: {}", cycle.join(" -> ")))),
    };
    let rank: HashMap<&str, usize> = order.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    tasks.sort_by_key(|t| rank.get(t.task_id.as_str()).copied());

    Ok(Dag {
        dag_id: raw.dag_id,
        description: raw.description,
        schedule,
        start_date,
        end_date,
        timezone,
        catchup: raw.catchup,
        max_active_runs,
        max_active_tasks,
        params,
        tags: raw.tags,
        owners: vec![defaults.owner.clone().unwrap_or_else(|| "gust".into())],
        is_paused_upon_creation: raw.is_paused_upon_creation,
        asset_schedule,
        tasks,
    })
}

/// The condition of `schedule: {assets: …}`, `None` for any other schedule.
fn asset_schedule(schedule: Option<&serde_json::Value>) -> Result<Option<AssetCondition>, String> {
    match schedule {
        Some(serde_json::Value::Object(map)) if map.contains_key("assets") => {
            if map.len() != 1 {
                return Err(
                    "schedule: `{assets: …}` takes no other key; write e.g. schedule: {assets: [orders]}".into()
                );
            }
            AssetCondition::parse(&map["assets"]).map(Some).map_err(|p| format!("schedule: assets: {p}"))
        }
        _ => Ok(None),
    }
}

/// A task's `outlets:` or `inlets:`, which must be a list when given.
fn asset_list(value: Option<&serde_json::Value>) -> Result<&[serde_json::Value], String> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(&[]),
        Some(serde_json::Value::Array(items)) => Ok(items),
        Some(_) => Err("must be a list of assets, e.g. [s3://bucket/orders]".into()),
    }
}

fn operator_spec(operator: &str, args: &serde_json::Map<String, serde_json::Value>) -> Result<OperatorSpec, String> {
    if let Some(sensor) = super::sensor::parse_sensor(operator, args) {
        return sensor;
    }
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
            Ok(OperatorSpec::Bash {
                command: bash.command,
                env: bash.env,
                cwd: bash.cwd,
                do_xcom_push: bash.do_xcom_push,
            })
        }
        "branch" => {
            let branch: BranchArgs = serde_json::from_value(serde_json::Value::Object(args.clone()))
                .map_err(|e| format!("operator `branch`: {e}"))?;
            if branch.command.trim().is_empty() {
                return Err("operator `branch`: command is empty".into());
            }
            Ok(OperatorSpec::Branch { command: branch.command, env: branch.env, cwd: branch.cwd })
        }
        "http" => Ok(OperatorSpec::Http(super::HttpArgs::parse(args)?)),
        "sql" => Ok(OperatorSpec::Sql(super::SqlArgs::parse(args)?)),
        "python" => Ok(OperatorSpec::Python(super::PythonArgs::parse(args)?)),
        other => custom_operator(other, args),
    }
}

/// A name that is not built in: a custom operator, whose arguments all sit under `args:`.
fn custom_operator(name: &str, args: &serde_json::Map<String, serde_json::Value>) -> Result<OperatorSpec, String> {
    let valid = !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !valid {
        return Err(format!(
            "unknown operator `{name}`: built-in operators are {}, and a custom operator's name uses only a-z, 0-9, `_` and `-`",
            KNOWN_OPERATORS.join(", ")
        ));
    }
    if let Some(key) = args.keys().find(|key| *key != "args") {
        return Err(format!(
            "operator `{name}` is not built in ({}), so it is a custom operator: put its arguments under `args:` (found `{key}`)",
            KNOWN_OPERATORS.join(", ")
        ));
    }
    let args = match args.get("args") {
        None | Some(serde_json::Value::Null) => serde_json::Map::new(),
        Some(serde_json::Value::Object(args)) => args.clone(),
        Some(other) => return Err(format!("operator `{name}`: args must be a mapping, got {other}")),
    };
    Ok(OperatorSpec::Custom { name: name.to_string(), args })
}

fn pool_name(value: Option<&serde_json::Value>) -> Result<Option<String>, String> {
    match value {
        None => Ok(None),
        Some(serde_json::Value::String(name)) => check_identifier(name).map(|()| Some(name.clone())),
        Some(other) => Err(format!("must be a pool name (a string), got {other}")),
    }
}

fn pool_slots(value: Option<&serde_json::Value>) -> Result<Option<u32>, String> {
    let Some(value) = value else { return Ok(None) };
    match value.as_u64().map(u32::try_from) {
        Some(Ok(0)) => Err("must be at least 1, got 0".into()),
        Some(Ok(slots)) => Ok(Some(slots)),
        _ => Err(format!("must be a whole number of slots, at least 1, got {value}")),
    }
}

fn priority_weight(value: Option<&serde_json::Value>) -> Result<Option<i32>, String> {
    let Some(value) = value else { return Ok(None) };
    match value.as_i64().map(i32::try_from) {
        Some(Ok(weight)) => Ok(Some(weight)),
        _ => Err(format!("must be a whole number (higher runs first), got {value}")),
    }
}

fn parse_trigger_rule(text: Option<&str>) -> Result<Option<TriggerRule>, String> {
    let Some(text) = text else { return Ok(None) };
    TriggerRule::parse(text.trim()).map(Some).ok_or_else(|| {
        let accepted: Vec<&str> = TriggerRule::ALL.iter().map(|r| r.as_str()).collect();
        format!("unknown trigger rule `{text}`; accepted: {}", accepted.join(", "))
    })
}

/// A date or date-time; without an offset it is read on `timezone`'s wall clock.
fn date_in(text: &str, timezone: Tz) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    let naive = NAIVE_DATE_TIME_FORMATS
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .or_else(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)))
        .ok_or_else(|| {
            format!("bad date `{text}`; write e.g. 2026-01-01, 2026-01-01T06:00:00 or 2026-01-01T06:00:00+02:00")
        })?;
    match timezone.from_local_datetime(&naive) {
        LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => Ok(at.with_timezone(&Utc)),
        LocalResult::None => Err(format!("`{text}` does not exist in {timezone} (the clocks skip it)")),
    }
}

const NAIVE_DATE_TIME_FORMATS: &[&str] =
    &["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"];

const TZ_HINT: &str = "use an IANA name such as Europe/Amsterdam, America/New_York or UTC";

pub(super) fn duration_ms(text: Option<&str>) -> Result<Option<u64>, String> {
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
    use crate::dag::MAX_DAG_FILE_BYTES;

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
        assert_eq!(
            c.operator,
            OperatorSpec::Bash { command: "echo c".into(), env: BTreeMap::new(), cwd: None, do_xcom_push: false }
        );
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
        assert!(
            err.contains("a -> b -> c -> a") || err.contains("b -> c -> a -> b") || err.contains("c -> a -> b -> c"),
            "{err}"
        );
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
    fn a_custom_operator_with_loose_arguments_lists_the_built_in_ones() {
        let err = problem_of("dag_id: x\ntasks:\n  - {id: a, operator: spark, master: local}\n");
        assert!(err.contains("task `a`: operator `spark` is not built in (noop, bash, branch"), "{err}");
        assert!(err.contains("put its arguments under `args:` (found `master`)"), "{err}");
        let err = problem_of("dag_id: x\ntasks:\n  - {id: a, operator: Spark}\n");
        assert!(err.contains("unknown operator `Spark`: built-in operators are noop, bash, branch"), "{err}");
        let err = problem_of("dag_id: x\ntasks:\n  - {id: a, operator: spark, args: [1]}\n");
        assert!(err.contains("args must be a mapping"), "{err}");
    }

    #[test]
    fn any_other_operator_name_is_a_custom_operator_with_its_args() {
        let dag = parse("dag_id: x\ntasks:\n  - {id: a, operator: word-count_2, args: {path: '{{ ds }}', n: [1, {k: v}]}}\n  - {id: b, operator: hello}\n").unwrap();
        let args = serde_json::json!({"path": "{{ ds }}", "n": [1, {"k": "v"}]});
        assert_eq!(
            dag.tasks[0].operator,
            OperatorSpec::Custom { name: "word-count_2".into(), args: args.as_object().unwrap().clone() }
        );
        assert_eq!(dag.tasks[1].operator, OperatorSpec::Custom { name: "hello".into(), args: Default::default() });
    }

    #[test]
    fn a_bad_duration_names_the_field_and_the_value() {
        let err = problem_of("dag_id: x\ntasks:\n  - {id: a, operator: noop, retry_delay: soon}\n");
        assert!(err.contains("task `a`: retry_delay: bad duration `soon`"), "{err}");
        let err = problem_of(
            "dag_id: x\ndefault_args: {execution_timeout: 5 parsecs}\ntasks:\n  - {id: a, operator: noop}\n",
        );
        assert!(err.contains("default_args.execution_timeout: bad duration"), "{err}");
    }

    #[test]
    fn a_bad_cron_is_rejected() {
        let err = problem_of(
            "dag_id: x\nschedule: '99 * * * *'\nstart_date: 2026-01-01\ntasks:\n  - {id: a, operator: noop}\n",
        );
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
        assert!(
            problem_of("dag_id: x\nschedule: '@daily'\ntasks:\n  - {id: a, operator: noop}\n").contains("start_date")
        );
    }

    #[test]
    fn a_param_default_that_does_not_fit_its_type_names_the_file_and_the_param() {
        let err = problem_of(
            "dag_id: x\nparams: {count: {type: integer, default: many}}\ntasks:\n  - {id: a, operator: noop}\n",
        );
        assert_eq!(err, r#"dags/test.yaml: param `count`: the default must be an integer, got the string "many""#);
        let err = problem_of("dag_id: x\nparams: {count: {type: intger}}\ntasks:\n  - {id: a, operator: noop}\n");
        assert!(err.contains("param `count`: unknown type \"intger\""), "{err}");
    }

    #[test]
    fn a_scheduled_dag_cannot_have_a_required_param() {
        let yaml = "dag_id: x\nschedule: '@daily'\nstart_date: 2026-01-01\nparams: {env: {type: string}}\ntasks:\n  - {id: a, operator: noop}\n";
        assert!(problem_of(yaml).contains("param `env` has no default"), "{}", problem_of(yaml));
        let manual =
            parse("dag_id: x\nparams: {env: {type: string}, n: 3}\ntasks:\n  - {id: a, operator: noop}\n").unwrap();
        assert_eq!(manual.params.required().collect::<Vec<_>>(), ["env"]);
    }

    #[test]
    fn the_model_survives_a_json_round_trip() {
        let dag = parse(DIAMOND).unwrap();
        let json = serde_json::to_value(&dag).unwrap();
        assert_eq!(serde_json::from_value::<Dag>(json).unwrap(), dag);
    }

    #[test]
    fn a_trigger_rule_is_set_per_task_or_in_default_args_and_defaults_to_all_success() {
        let dag = parse(
            "dag_id: x\ndefault_args: {trigger_rule: none_failed}\ntasks:\n  - {id: a, operator: noop}\n  - {id: b, operator: noop, depends_on: [a], trigger_rule: all_done}\n",
        )
        .unwrap();
        assert_eq!(dag.task("a").unwrap().trigger_rule, TriggerRule::NoneFailed);
        assert_eq!(dag.task("b").unwrap().trigger_rule, TriggerRule::AllDone);
        assert_eq!(parse(DIAMOND).unwrap().task("d").unwrap().trigger_rule, TriggerRule::AllSuccess);
    }

    #[test]
    fn an_unknown_trigger_rule_names_the_file_the_task_and_the_accepted_rules() {
        let err = problem_of("dag_id: x\ntasks:\n  - {id: a, operator: noop, trigger_rule: all_sucess}\n");
        assert!(err.starts_with("dags/test.yaml: task `a`: trigger_rule: unknown trigger rule `all_sucess`; accepted: all_success, all_failed, all_done,"), "{err}");
        assert!(err.contains("none_failed_min_one_success"), "{err}");
        let err =
            problem_of("dag_id: x\ndefault_args: {trigger_rule: sometimes}\ntasks:\n  - {id: a, operator: noop}\n");
        assert!(err.contains("default_args.trigger_rule: unknown trigger rule `sometimes`"), "{err}");
    }

    #[test]
    fn a_task_stored_before_trigger_rules_existed_still_loads_as_all_success() {
        let dag = parse(DIAMOND).unwrap();
        let mut json = serde_json::to_value(&dag).unwrap();
        for task in json["tasks"].as_array_mut().unwrap() {
            assert!(task.get("trigger_rule").is_none(), "the default is not stored, so version hashes do not change");
            task.as_object_mut().unwrap().remove("trigger_rule");
        }
        assert_eq!(serde_json::from_value::<Dag>(json).unwrap(), dag);
    }

    fn scheduled(lines: &str) -> String {
        format!("dag_id: x\n{lines}\ntasks:\n  - {{id: a, operator: noop}}\n")
    }

    #[test]
    fn timezone_start_date_and_end_date_are_read_on_the_dag_wall_clock() {
        let yaml = scheduled(
            "schedule: '0 2 * * *'\ntimezone: Europe/Amsterdam\nstart_date: 2026-01-01\nend_date: 2026-07-01T06:30:00",
        );
        let dag = parse(&yaml).unwrap();
        assert_eq!(dag.timezone, chrono_tz::Europe::Amsterdam);
        assert_eq!(dag.start_date, Utc.with_ymd_and_hms(2025, 12, 31, 23, 0, 0).unwrap());
        assert_eq!(dag.end_date, Some(Utc.with_ymd_and_hms(2026, 7, 1, 4, 30, 0).unwrap()));
        let utc = parse(&scheduled("schedule: '@daily'\nstart_date: 2026-01-01T00:00:00+02:00")).unwrap();
        assert_eq!((utc.timezone, utc.start_date), (Tz::UTC, Utc.with_ymd_and_hms(2025, 12, 31, 22, 0, 0).unwrap()));
        assert_eq!(utc.end_date, None);
    }

    #[test]
    fn once_and_fixed_interval_schedules_are_accepted() {
        let every = parse(&scheduled("schedule: {every: 15m}\nstart_date: 2026-01-01")).unwrap();
        assert_eq!(every.schedule, Some(Schedule::every("15m").unwrap()));
        let once = parse(&scheduled("schedule: '@once'\nstart_date: 2026-01-01")).unwrap();
        assert!(once.schedule.unwrap().is_once());
        assert_eq!(parse(&scheduled("schedule: null")).unwrap().schedule, None);
    }

    #[test]
    fn bad_timezones_dates_and_intervals_name_the_file_and_the_problem() {
        let daily = |extra: &str| scheduled(&format!("schedule: '@daily'\nstart_date: 2026-01-01\n{extra}"));
        let err = problem_of(&daily("timezone: Europe/Amsterdm"));
        assert!(err.starts_with("dags/test.yaml: unknown timezone `Europe/Amsterdm`; use an IANA name"), "{err}");
        let err = problem_of(&daily("end_date: next tuesday"));
        assert!(err.starts_with("dags/test.yaml: end_date: bad date `next tuesday`; write e.g. 2026-01-01"), "{err}");
        assert!(problem_of(&daily("end_date: 2025-06-01")).contains("end_date is before start_date"));
        let err = problem_of(&daily("timezone: Europe/Amsterdam\nend_date: 2026-03-29 02:30"));
        assert!(err.contains("does not exist in Europe/Amsterdam"), "{err}");
        let err = problem_of(&scheduled("schedule: {every: soon}\nstart_date: 2026-01-01"));
        assert!(err.starts_with("dags/test.yaml: bad schedule `{every: soon}`: bad duration"), "{err}");
        let err = problem_of(&scheduled("schedule: {cron: '@daily'}\nstart_date: 2026-01-01"));
        assert!(err.contains("exactly one key, `every`"), "{err}");
    }

    #[test]
    fn pool_pool_slots_and_priority_weight_come_from_the_task_or_default_args() {
        let dag = parse(
            "dag_id: x\nmax_active_tasks: 3\ndefault_args: {pool: etl, priority_weight: 5}\ntasks:\n  - {id: a, operator: noop}\n  - {id: b, operator: noop, pool: gpu, pool_slots: 2, priority_weight: -1}\n",
        )
        .unwrap();
        assert_eq!(dag.max_active_tasks, 3);
        let a = dag.task("a").unwrap();
        assert_eq!((a.pool.as_str(), a.pool_slots, a.priority_weight), ("etl", 1, 5));
        let b = dag.task("b").unwrap();
        assert_eq!((b.pool.as_str(), b.pool_slots, b.priority_weight), ("gpu", 2, -1));
        let plain = parse(DIAMOND).unwrap();
        assert_eq!(plain.max_active_tasks, 16);
        let d = plain.task("d").unwrap();
        assert_eq!((d.pool.as_str(), d.pool_slots, d.priority_weight), ("default_pool", 1, 1));
    }

    #[test]
    fn bad_pool_settings_name_the_file_the_task_and_the_problem() {
        let err = problem_of("dag_id: x\ntasks:\n  - {id: a, operator: noop, pool_slots: 0}\n");
        assert_eq!(err, "dags/test.yaml: task `a`: pool_slots: must be at least 1, got 0");
        let err = problem_of("dag_id: x\ntasks:\n  - {id: a, operator: noop, pool_slots: two}\n");
        assert!(err.starts_with("dags/test.yaml: task `a`: pool_slots: must be a whole number"), "{err}");
        let err = problem_of("dag_id: x\ntasks:\n  - {id: a, operator: noop, priority_weight: high}\n");
        assert!(err.starts_with("dags/test.yaml: task `a`: priority_weight: must be a whole number"), "{err}");
        let err = problem_of("dag_id: x\ntasks:\n  - {id: a, operator: noop, pool: [a]}\n");
        assert!(err.starts_with("dags/test.yaml: task `a`: pool: must be a pool name"), "{err}");
        let err = problem_of("dag_id: x\ndefault_args: {pool_slots: 0}\ntasks:\n  - {id: a, operator: noop}\n");
        assert!(err.contains("default_args.pool_slots: must be at least 1"), "{err}");
        let err = problem_of("dag_id: x\nmax_active_tasks: 0\ntasks:\n  - {id: a, operator: noop}\n");
        assert_eq!(err, "dags/test.yaml: max_active_tasks must be at least 1");
    }

    #[test]
    fn default_pool_settings_are_not_stored_so_old_definitions_keep_their_hash() {
        let dag = parse(DIAMOND).unwrap();
        let json = serde_json::to_value(&dag).unwrap();
        assert!(json.get("max_active_tasks").is_none(), "{json}");
        for task in json["tasks"].as_array().unwrap() {
            for key in ["pool", "pool_slots", "priority_weight"] {
                assert!(task.get(key).is_none(), "{key} stored in {task}");
            }
        }
        assert_eq!(serde_json::from_value::<Dag>(json).unwrap(), dag);
    }

    #[test]
    fn a_utc_dag_without_end_date_stores_neither_field() {
        let json = serde_json::to_value(parse(DIAMOND).unwrap()).unwrap();
        assert!(json.get("timezone").is_none() && json.get("end_date").is_none(), "{json}");
    }

    #[test]
    fn a_task_mapped_over_an_xcom_depends_on_the_task_that_pushes_it() {
        let dag = parse(
            "dag_id: x\ntasks:\n  - {id: list, operator: bash, command: ls, do_xcom_push: true}\n  - {id: each, operator: bash, command: 'echo {{ item }}', expand: {xcom: list}}\n",
        )
        .unwrap();
        let each = dag.task("each").unwrap();
        assert_eq!(each.upstream, ["list"]);
        assert_eq!(each.expand, Some(ExpandSource::Xcom("list".into())));
    }

    #[test]
    fn bad_expand_sources_name_the_task_and_the_problem() {
        let err = problem_of("dag_id: x\ntasks:\n  - {id: a, operator: noop, expand: {xcom: nope}}\n");
        assert!(err.contains("task `a`: expand: xcom names `nope`, which is not another task"), "{err}");
        let err = problem_of("dag_id: x\ntasks:\n  - {id: a, operator: noop, expand: {param: files}}\n");
        assert!(err.contains("param `files` is not declared"), "{err}");
        let err = problem_of("dag_id: x\ntasks:\n  - {id: a, operator: noop, expand: 3}\n");
        assert!(err.contains("task `a`: expand: cannot expand over 3"), "{err}");
        let err = problem_of("dag_id: x\ntasks:\n  - {id: a, operator: branch, command: echo b, expand: [1]}\n  - {id: b, operator: noop, depends_on: [a]}\n");
        assert!(err.contains("branch task cannot be mapped"), "{err}");
    }

    #[test]
    fn a_billion_laughs_yaml_is_refused_naming_the_alias_limit() {
        let mut yaml =
            String::from("dag_id: laughs\ntasks:\n  - id: a\n    operator: bash\n    command: echo\n    env:\n");
        yaml.push_str("      L0: &l0 lol\n");
        for level in 1..=9 {
            yaml.push_str(&format!("      L{level}: &l{level} [{}]\n", vec![format!("*l{}", level - 1); 9].join(", ")));
        }
        let err = problem_of(&yaml);
        assert!(err.starts_with("dags/test.yaml: line "), "{err}");
        assert!(
            err.contains(
                "more than the limit of 1000000 values for a DAG file once its aliases (`*name`) are expanded"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_deeply_nested_yaml_is_refused_naming_the_depth_limit() {
        let deep = format!(
            "dag_id: x\nparams: {{p: {{default: {}1{}}}}}\ntasks:\n  - {{id: a, operator: noop}}\n",
            "[".repeat(200),
            "]".repeat(200)
        );
        let err = problem_of(&deep);
        assert!(err.starts_with("dags/test.yaml: line 2: the YAML nests deeper than the limit of 64 levels"), "{err}");
        let fine = format!(
            "dag_id: x\nparams: {{p: {{default: {}1{}}}}}\ntasks:\n  - {{id: a, operator: noop}}\n",
            "[".repeat(50),
            "]".repeat(50)
        );
        parse(&fine).unwrap();
    }

    #[test]
    fn a_recursive_alias_is_refused() {
        let err = problem_of("dag_id: x\ntasks: &t\n  - {id: a, operator: noop, depends_on: *t}\n");
        assert!(err.contains("the alias `*t` is inside the node that `&t` names"), "{err}");
    }

    #[test]
    fn a_dag_file_over_the_size_limit_is_refused() {
        let yaml = format!(
            "dag_id: x\ndescription: {}\ntasks:\n  - {{id: a, operator: noop}}\n",
            "x".repeat(MAX_DAG_FILE_BYTES)
        );
        let err = problem_of(&yaml);
        assert_eq!(
            err,
            format!(
                "dags/test.yaml: the file is {} bytes, over the limit of 4194304 bytes (4 MiB) for a DAG file; split it into several DAG files",
                yaml.len()
            )
        );
    }

    fn fan_out(tasks: usize) -> String {
        let mut yaml = String::from("dag_id: wide\ntasks:\n");
        for i in 0..tasks {
            yaml.push_str(&format!("  - {{id: t{i}, operator: noop}}\n"));
        }
        yaml
    }

    #[test]
    fn a_dag_with_more_tasks_than_the_limit_is_refused_and_one_at_the_limit_parses() {
        let err = problem_of(&fan_out(MAX_TASKS + 1));
        assert_eq!(err, "dags/test.yaml: the DAG has 100001 tasks, over the limit of 100000 tasks for one DAG; split it into several DAGs");
        assert_eq!(parse(&fan_out(MAX_TASKS)).unwrap().tasks.len(), MAX_TASKS);
    }

    #[test]
    fn a_task_mapped_over_a_literal_list_longer_than_the_map_limit_is_refused() {
        let items: Vec<String> = (0..=crate::dag::MAX_MAP_LENGTH).map(|i| i.to_string()).collect();
        let yaml = format!("dag_id: x\ntasks:\n  - {{id: a, operator: noop, expand: [{}]}}\n", items.join(", "));
        assert_eq!(problem_of(&yaml), "dags/test.yaml: task `a`: expand: 1025 elements; at most 1024 are allowed");
    }
}
