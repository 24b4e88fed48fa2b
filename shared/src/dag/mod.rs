//! DAGs: the validated model the scheduler stores and dispatches from, and
//! the parser that turns one YAML file into it.

mod assets;
mod builtin;
mod graph;
mod limits;
mod mapping;
mod params;
mod parse;
#[cfg(test)]
mod properties;
mod schedule;
mod sensor;
mod trigger_rule;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use assets::{AssetCondition, AssetRef, DEFAULT_ASSET_GROUP};
pub use builtin::{json_strings, render_json, HttpArgs, PythonArgs, SqlArgs, DEFAULT_SQL_MAX_ROWS, HTTP_METHODS};
pub use limits::{
    check_yaml, LimitError, MAX_DAG_FILE_BYTES, MAX_TASKS, MAX_YAML_DEPTH, MAX_YAML_NODES, MAX_YAML_TEXT_BYTES,
};
pub use mapping::{ExpandSource, MapError, MAX_MAP_LENGTH};
pub use params::{resolve_params, Param, ParamError, ParamProblem, ParamType, Params};
pub use parse::{parse_dag_file, DagError};
pub use schedule::{DataInterval, Schedule, ScheduleBounds, ScheduleError};
pub use sensor::{
    ExternalTaskCheck, FileCheck, Sensor, SensorMode, Waiting, DEFAULT_POKE_INTERVAL_MS, DEFAULT_SENSOR_TIMEOUT_MS,
};
pub use trigger_rule::{TriggerOutcome, TriggerRule, UpstreamCounts};

/// A validated DAG, stored as JSON in `dags.definition` and `dag_versions.definition`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dag {
    /// Unique name of the DAG.
    pub dag_id: String,
    /// Free text shown in the API.
    pub description: Option<String>,
    /// When scheduled runs are created; `None` means manual only.
    pub schedule: Option<Schedule>,
    /// First logical date a scheduled run may have.
    pub start_date: DateTime<Utc>,
    /// Last logical date a scheduled run may have, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<DateTime<Utc>>,
    /// IANA timezone the schedule's cron and naive dates are read in.
    #[serde(default, skip_serializing_if = "is_utc")]
    pub timezone: chrono_tz::Tz,
    /// Whether every missed interval gets a run (oldest first), or only the latest.
    pub catchup: bool,
    /// Most runs of this DAG in `running` at once.
    pub max_active_runs: u32,
    /// Most task instances of this DAG queued or running at once, across all its runs.
    #[serde(default = "default_max_active_tasks", skip_serializing_if = "is_default_max_active_tasks")]
    pub max_active_tasks: u32,
    /// Declared params (defaults and types), overridable by a trigger's `conf`; see [`resolve_params`].
    #[serde(default)]
    pub params: Params,
    /// Labels shown in the API.
    pub tags: Vec<String>,
    /// Owners shown in the API.
    pub owners: Vec<String>,
    /// Whether the DAG starts paused when first stored; `None` follows `dags_are_paused_at_creation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_paused_upon_creation: Option<bool>,
    /// The assets whose events trigger runs (`schedule: {assets: …}`); `None` unless asset-scheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_schedule: Option<AssetCondition>,
    /// Tasks in topological order (every task after its upstreams).
    pub tasks: Vec<TaskSpec>,
}

/// One task of a DAG with its defaults applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// Name of the task, unique in its DAG.
    pub task_id: String,
    /// What the worker runs.
    pub operator: OperatorSpec,
    /// Tasks that must finish first.
    pub upstream: Vec<String>,
    /// RabbitMQ queue (routing key) the task is sent to.
    pub queue: String,
    /// Extra tries after the first one fails.
    pub retries: u32,
    /// Wait before a retry, in milliseconds.
    pub retry_delay_ms: u64,
    /// Whether the wait doubles with each try.
    pub retry_exponential_backoff: bool,
    /// Upper bound of the wait, in milliseconds.
    pub max_retry_delay_ms: Option<u64>,
    /// Time after which the worker kills the task, in milliseconds.
    pub execution_timeout_ms: Option<u64>,
    /// When the task runs, judged from its upstreams' states.
    #[serde(default, skip_serializing_if = "TriggerRule::is_default")]
    pub trigger_rule: TriggerRule,
    /// Pool whose slots the task occupies while queued or running.
    #[serde(default = "default_pool", skip_serializing_if = "is_default_pool")]
    pub pool: String,
    /// Slots of its pool the task occupies (at least 1).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub pool_slots: u32,
    /// Dispatch order among waiting tasks: a higher weight goes first.
    #[serde(default = "default_priority_weight", skip_serializing_if = "is_default_priority_weight")]
    pub priority_weight: i32,
    /// The list a mapped task expands over, one task instance per element.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expand: Option<ExpandSource>,
    /// Assets a successful try records an event for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outlets: Vec<AssetRef>,
    /// Asset aliases the task names among its outlets (registered; resolved at run time).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outlet_aliases: Vec<String>,
    /// Assets the task reads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inlets: Vec<AssetRef>,
}

/// The `timetable_summary` of an asset-scheduled DAG (Airflow's `AssetTriggeredTimetable`).
pub const ASSET_TIMETABLE_SUMMARY: &str = "Asset";
/// The pool tasks use unless they name another (Airflow's `default_pool`).
pub const DEFAULT_POOL: &str = "default_pool";
/// `max_active_tasks` of a DAG that sets none (Airflow's default).
pub const DEFAULT_MAX_ACTIVE_TASKS: u32 = 16;

fn default_pool() -> String {
    DEFAULT_POOL.to_string()
}

fn is_default_pool(pool: &str) -> bool {
    pool == DEFAULT_POOL
}

fn one() -> u32 {
    1
}

fn is_one(slots: &u32) -> bool {
    *slots == 1
}

fn default_priority_weight() -> i32 {
    1
}

fn is_default_priority_weight(weight: &i32) -> bool {
    *weight == 1
}

fn default_max_active_tasks() -> u32 {
    DEFAULT_MAX_ACTIVE_TASKS
}

fn is_default_max_active_tasks(limit: &u32) -> bool {
    *limit == DEFAULT_MAX_ACTIVE_TASKS
}

/// When and how often a failed task is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Wait before a retry, in milliseconds.
    pub delay_ms: u64,
    /// Whether the wait doubles with each try.
    pub exponential: bool,
    /// Upper bound of the wait, in milliseconds.
    pub max_delay_ms: Option<u64>,
}

/// Upper bound of an exponential wait when the DAG sets none (Airflow's default: one day).
const DEFAULT_MAX_EXPONENTIAL_DELAY_MS: u64 = 24 * 60 * 60 * 1000;

impl RetryPolicy {
    /// The wait after try `failed_try` (1 for the first) failed.
    pub fn delay_after(&self, failed_try: i32) -> u64 {
        let delay = if self.exponential {
            let doublings = u32::try_from(failed_try.saturating_sub(1)).unwrap_or(0).min(40);
            let cap = self.max_delay_ms.unwrap_or(DEFAULT_MAX_EXPONENTIAL_DELAY_MS);
            self.delay_ms.saturating_mul(1u64 << doublings).min(cap)
        } else {
            self.delay_ms
        };
        self.max_delay_ms.map_or(delay, |max| delay.min(max))
    }
}

/// An operator with its arguments, as sent to workers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "operator", rename_all = "snake_case")]
pub enum OperatorSpec {
    /// Does nothing and succeeds.
    Noop,
    /// Runs a shell command with `bash -c`.
    Bash {
        /// The command line.
        command: String,
        /// Extra environment variables.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        env: BTreeMap<String, String>,
        /// Working directory; a fresh temporary folder when unset.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cwd: Option<String>,
        /// Whether the last line of stdout becomes the task's `return_value` XCom.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        do_xcom_push: bool,
    },
    /// Runs a shell command whose `return_value` XCom (its last stdout line or
    /// `$GUST_XCOM`) names the direct downstream task or tasks to follow.
    Branch {
        /// The command line.
        command: String,
        /// Extra environment variables.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        env: BTreeMap<String, String>,
        /// Working directory; a fresh temporary folder when unset.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cwd: Option<String>,
    },
    /// Sends one HTTP request; the response body is the `return_value` XCom.
    Http(HttpArgs),
    /// Runs one PostgreSQL statement; its rows are the `return_value` XCom.
    Sql(SqlArgs),
    /// Calls a Python function in its own interpreter process; its return value is the `return_value` XCom.
    Python(PythonArgs),
    /// Waits until an HTTP endpoint answers with an expected status.
    HttpSensor(Sensor<HttpArgs>),
    /// Waits until a query's first cell is truthy (not null, false, 0 or empty).
    SqlSensor(Sensor<SqlArgs>),
    /// Waits until a file (or a glob's match) exists on the worker.
    FileSensor(Sensor<FileCheck>),
    /// Waits until a task (or the run) of another DAG for the same logical date reaches an allowed state.
    ExternalTaskSensor(Sensor<ExternalTaskCheck>),
    /// An operator that is not built in: the worker runs the executable
    /// `gust-op-<name>` from its plugin path with the protocol in `worker/src/operators/custom.rs`.
    Custom {
        /// The operator's name (`[a-z0-9_-]+`), as written in the DAG file.
        name: String,
        /// Its arguments, templated (every string inside) like bash's command.
        #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
        args: serde_json::Map<String, serde_json::Value>,
    },
}

/// The built-in operator names; any other name (`[a-z0-9_-]+`) is a custom operator.
pub const KNOWN_OPERATORS: &[&str] = &[
    "noop",
    "bash",
    "branch",
    "http",
    "sql",
    "python",
    "http_sensor",
    "sql_sensor",
    "file_sensor",
    "external_task_sensor",
];

impl OperatorSpec {
    /// The operator's name as written in DAG files.
    pub fn name(&self) -> &str {
        match self {
            OperatorSpec::Custom { name, .. } => name,
            OperatorSpec::Noop => "noop",
            OperatorSpec::Bash { .. } => "bash",
            OperatorSpec::Branch { .. } => "branch",
            OperatorSpec::Http(_) => "http",
            OperatorSpec::Sql(_) => "sql",
            OperatorSpec::Python(_) => "python",
            OperatorSpec::HttpSensor(_) => "http_sensor",
            OperatorSpec::SqlSensor(_) => "sql_sensor",
            OperatorSpec::FileSensor(_) => "file_sensor",
            OperatorSpec::ExternalTaskSensor(_) => "external_task_sensor",
        }
    }

    /// How the task waits, if it is a sensor.
    pub fn waiting(&self) -> Option<&Waiting> {
        match self {
            OperatorSpec::HttpSensor(s) => Some(&s.waiting),
            OperatorSpec::SqlSensor(s) => Some(&s.waiting),
            OperatorSpec::FileSensor(s) => Some(&s.waiting),
            OperatorSpec::ExternalTaskSensor(s) => Some(&s.waiting),
            _ => None,
        }
    }

    /// Whether this operator chooses which downstream tasks run.
    pub fn is_branch(&self) -> bool {
        matches!(self, OperatorSpec::Branch { .. })
    }
}

impl TaskSpec {
    /// The task's retry timing.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            delay_ms: self.retry_delay_ms,
            exponential: self.retry_exponential_backoff,
            max_delay_ms: self.max_retry_delay_ms,
        }
    }
}

fn is_utc(timezone: &chrono_tz::Tz) -> bool {
    *timezone == chrono_tz::Tz::UTC
}

impl Dag {
    /// The task named `task_id`, if the DAG has it.
    pub fn task(&self, task_id: &str) -> Option<&TaskSpec> {
        self.tasks.iter().find(|t| t.task_id == task_id)
    }

    /// Airflow's `timetable_summary`: the schedule's text, `Asset` when asset-scheduled, `None` when manual only.
    pub fn timetable_summary(&self) -> Option<String> {
        match (&self.schedule, &self.asset_schedule) {
            (Some(schedule), _) => Some(schedule.text.clone()),
            (None, Some(_)) => Some(ASSET_TIMETABLE_SUMMARY.into()),
            (None, None) => None,
        }
    }

    /// The span and timezone the DAG's schedule is read in.
    pub fn schedule_bounds(&self) -> ScheduleBounds {
        ScheduleBounds { start_date: self.start_date, end_date: self.end_date, timezone: self.timezone }
    }
}

#[cfg(test)]
mod tests {
    use super::RetryPolicy;

    #[test]
    fn the_example_dag_files_parse() {
        let examples = [
            ("dags/example_etl.yaml", include_str!("../../../dags/example_etl.yaml")),
            ("dags/example_hello.yaml", include_str!("../../../dags/example_hello.yaml")),
            ("dags/example_hourly_report.yaml", include_str!("../../../dags/example_hourly_report.yaml")),
            ("dags/example_asset_producer.yaml", include_str!("../../../dags/example_asset_producer.yaml")),
            ("dags/example_asset_consumer.yaml", include_str!("../../../dags/example_asset_consumer.yaml")),
        ];
        for (file, yaml) in examples {
            let dag = super::parse_dag_file(file, yaml).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert!(!dag.tasks.is_empty(), "{file}");
        }
    }

    #[test]
    fn a_fixed_delay_is_the_same_for_every_try() {
        let policy = RetryPolicy { delay_ms: 30_000, exponential: false, max_delay_ms: None };
        assert_eq!([1, 2, 5].map(|t| policy.delay_after(t)), [30_000, 30_000, 30_000]);
    }

    #[test]
    fn an_exponential_delay_doubles_per_try_up_to_its_cap() {
        let policy = RetryPolicy { delay_ms: 1_000, exponential: true, max_delay_ms: Some(5_000) };
        assert_eq!([1, 2, 3, 4, 60].map(|t| policy.delay_after(t)), [1_000, 2_000, 4_000, 5_000, 5_000]);
        let uncapped = RetryPolicy { delay_ms: 1_000, exponential: true, max_delay_ms: None };
        assert_eq!(uncapped.delay_after(1000), 24 * 60 * 60 * 1000);
    }
}
