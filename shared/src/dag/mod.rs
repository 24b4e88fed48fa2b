//! DAGs: the validated model the scheduler stores and dispatches from, and
//! the parser that turns one YAML file into it.

mod graph;
mod parse;
mod schedule;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use parse::{parse_dag_file, DagError};
pub use schedule::{Schedule, ScheduleError};

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
    /// Whether missed intervals are created (only the latest is, for now).
    pub catchup: bool,
    /// Most runs of this DAG in `running` at once.
    pub max_active_runs: u32,
    /// Default parameters, overridable by a trigger's `conf`.
    pub params: serde_json::Map<String, serde_json::Value>,
    /// Labels shown in the API.
    pub tags: Vec<String>,
    /// Owners shown in the API.
    pub owners: Vec<String>,
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
    },
}

/// The operator names a DAG file may use.
pub const KNOWN_OPERATORS: &[&str] = &["noop", "bash"];

impl OperatorSpec {
    /// The operator's name as written in DAG files.
    pub fn name(&self) -> &'static str {
        match self {
            OperatorSpec::Noop => "noop",
            OperatorSpec::Bash { .. } => "bash",
        }
    }
}

impl Dag {
    /// The task named `task_id`, if the DAG has it.
    pub fn task(&self, task_id: &str) -> Option<&TaskSpec> {
        self.tasks.iter().find(|t| t.task_id == task_id)
    }
}
