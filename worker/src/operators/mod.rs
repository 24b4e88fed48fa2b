//! Operators: what a worker can run. Each built-in is one file; the
//! registry maps a message's operator to its implementation.

mod bash;
mod conn;
mod custom;
mod http;
mod noop;
mod process;
mod python;
mod sensor;
mod sql;

pub use conn::Connections;
pub use custom::Plugins;

use std::{future::Future, pin::Pin, time::Duration};

use gust_shared::{dag::OperatorSpec, message::TaskMessage, state::TaskState};

use tokio_util::sync::CancellationToken;

use crate::log_sink::LogSink;

/// How one try ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// `success`, `failed`, or `skipped` (a custom operator may skip its task).
    pub state: TaskState,
    /// Exit code of the task's process, if it had one.
    pub exit_code: Option<i32>,
    /// Why the try failed, for people.
    pub failure_reason: Option<String>,
    /// The worker stopped the try because it is shutting down; nothing is recorded.
    pub interrupted: bool,
    /// The `return_value` XCom the try pushed, stored with its success.
    pub xcom: Option<serde_json::Value>,
    /// Whether a failure may be retried (a custom operator can say it must not be).
    pub retryable: bool,
    /// A sensor in `reschedule` mode that is not satisfied yet: when to poke again
    /// (its `state` is then `up_for_reschedule`).
    pub next_poke: Option<NextPoke>,
}

/// When a rescheduled sensor pokes next, and since when it has been poking.
#[derive(Debug, Clone, PartialEq)]
pub struct NextPoke {
    /// Wait before the next poke.
    pub after: Duration,
    /// The try's first poke, from which the sensor's `timeout` counts.
    pub first_poke_at: chrono::DateTime<chrono::Utc>,
}

impl Outcome {
    /// Whether the try was stopped at its `execution_timeout` (every operator's reason then says so).
    pub fn is_timeout(&self) -> bool {
        self.failure_reason.as_deref().is_some_and(|reason| reason.contains("(execution_timeout)"))
    }

    /// A successful try without a process.
    pub fn success() -> Self {
        Outcome {
            state: TaskState::Success,
            exit_code: None,
            failure_reason: None,
            interrupted: false,
            xcom: None,
            retryable: true,
            next_poke: None,
        }
    }

    /// A failed try and why.
    pub fn failed(exit_code: Option<i32>, reason: impl Into<String>) -> Self {
        Outcome {
            state: TaskState::Failed,
            exit_code,
            failure_reason: Some(reason.into()),
            interrupted: false,
            xcom: None,
            retryable: true,
            next_poke: None,
        }
    }

    /// A sensor try parked until its next poke (`up_for_reschedule`).
    pub fn rescheduled(next_poke: NextPoke) -> Self {
        Outcome { state: TaskState::UpForReschedule, next_poke: Some(next_poke), ..Outcome::success() }
    }

    /// A try cut short by the worker's shutdown.
    pub fn interrupted(exit_code: Option<i32>) -> Self {
        Outcome {
            state: TaskState::Failed,
            exit_code,
            failure_reason: None,
            interrupted: true,
            xcom: None,
            retryable: true,
            next_poke: None,
        }
    }
}

/// Ends a try that failed before or without a process: the reason goes to the log and to the try.
async fn fail(log: &LogSink, reason: impl Into<String>) -> Outcome {
    let reason = reason.into();
    log.line(crate::log_sink::Stream::Gust, reason.clone()).await;
    Outcome::failed(None, reason)
}

/// Worker-side limits every operator honours.
#[derive(Debug, Clone)]
pub struct RunLimits {
    /// Time between SIGTERM and SIGKILL when a task is killed.
    pub kill_grace: Duration,
    /// Largest XCom a try may push, in bytes of JSON.
    pub max_xcom_bytes: usize,
    /// Where custom operators' executables are found.
    pub plugins: std::sync::Arc<Plugins>,
    /// Where the built-in operators' connections come from.
    pub connections: std::sync::Arc<Connections>,
    /// The gust database, which `external_task_sensor` reads.
    pub gust_db: deadpool_postgres::Pool,
}

/// A boxed operator future.
pub type OperatorFuture<'a> = Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

/// Something that runs one try of a task and reports how it ended.
pub trait Operator: Send + Sync {
    /// Runs the try described by `task`, writing its output to `log`; stops
    /// early (killing what it started) when `stop` is cancelled.
    fn run<'a>(
        &'a self,
        task: &'a TaskMessage,
        log: &'a LogSink,
        limits: &'a RunLimits,
        stop: &'a CancellationToken,
    ) -> OperatorFuture<'a>;
}

/// What this worker advertises it can run: every built-in operator with the
/// gust version, then the custom operators `described` (see [`Plugins::describe_all`]).
pub fn advertised(described: Vec<serde_json::Value>) -> serde_json::Value {
    let builtins = gust_shared::dag::KNOWN_OPERATORS
        .iter()
        .map(|name| serde_json::json!({"name": name, "kind": "builtin", "version": env!("CARGO_PKG_VERSION")}));
    serde_json::Value::Array(builtins.chain(described).collect())
}

/// The registry: the implementation of a message's operator.
pub fn for_spec(spec: &OperatorSpec) -> &'static dyn Operator {
    match spec {
        OperatorSpec::Noop => &noop::Noop,
        OperatorSpec::Bash { .. } | OperatorSpec::Branch { .. } => &bash::Bash,
        OperatorSpec::Custom { .. } => &custom::Custom,
        OperatorSpec::Http(_) => &http::Http,
        OperatorSpec::Sql(_) => &sql::Sql,
        OperatorSpec::Python(_) => &python::Python,
        OperatorSpec::HttpSensor(_)
        | OperatorSpec::SqlSensor(_)
        | OperatorSpec::FileSensor(_)
        | OperatorSpec::ExternalTaskSensor(_) => &sensor::Sensor,
    }
}
