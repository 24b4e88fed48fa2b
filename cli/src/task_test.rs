//! `gust tasks test`: runs one task's operator on this machine, with its
//! arguments rendered as `gust tasks render` renders them, through the
//! worker's own operators ([`gust_worker::run_one`]); prints its log and its
//! `return_value` XCom and records nothing. Upstream tasks do not run, so
//! templates that pull XComs cannot be rendered (as in `tasks render`).

use std::io::Write;

use chrono::Utc;
use gust_shared::{
    dag::{resolve_params, OperatorSpec},
    message::{TaskMessage, SCHEMA_VERSION},
    settings::{Settings, SettingsError},
    state::TaskState,
};
use serde_json::Value;

use crate::{
    args::TaskTestArgs,
    tasks::{self, RenderError},
};

/// Why a task could not be tested (a task that fails is a result, not an error).
#[derive(Debug, thiserror::Error)]
pub enum TaskTestError {
    /// Its arguments could not be rendered.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The settings (plugin path, limits) are broken.
    #[error("cannot read the settings: {0}")]
    Settings(#[from] SettingsError),
    /// A command-line value is malformed.
    #[error("{0}")]
    Argument(String),
    /// Writing the output failed.
    #[error("cannot write the output: {0}")]
    Write(#[from] std::io::Error),
}

/// Runs the command; true when the try succeeded (or was skipped).
pub async fn run(args: &TaskTestArgs) -> Result<bool, TaskTestError> {
    let target = &args.target;
    let tasks::RenderInputs { loaded, logical_date, conf } = tasks::inputs(&target.dag, &target.folder, &target.run)?;
    let rendered = tasks::render_task(&loaded, &target.task, logical_date, conf.clone(), Utc::now())?;
    let task = loaded.dag.task(&target.task).expect("render_task found the task");
    let params = resolve_params(&loaded.dag.params, &conf).map_err(|e| TaskTestError::Argument(e.to_string()))?;
    let (map_index, map_item, rendered) = match rendered {
        Value::Array(instances) => {
            let index = args.map_index.unwrap_or(0);
            let mut instance = instances.get(index).cloned().ok_or_else(|| {
                TaskTestError::Argument(format!(
                    "task `{}` maps over {} element(s); --map-index must be below that",
                    target.task,
                    instances.len()
                ))
            })?;
            if let Value::Object(fields) = &mut instance {
                fields.remove("map_index");
            }
            let items = task.expand.as_ref().map(|source| source.items(&params, &Default::default()));
            let item = items.and_then(Result::ok).and_then(|items| items.into_iter().nth(index));
            (i32::try_from(index).unwrap_or(i32::MAX), item, instance)
        }
        single if args.map_index.is_none() => (-1, None, single),
        _ => {
            return Err(TaskTestError::Argument(format!("task `{}` is not mapped; leave out --map-index", target.task)))
        }
    };
    let operator: OperatorSpec = serde_json::from_value(rendered)
        .map_err(|e| TaskTestError::Argument(format!("the rendered arguments do not form an operator: {e}")))?;
    let mut message = TaskMessage {
        version: SCHEMA_VERSION,
        ti_id: uuid::Uuid::new_v4(),
        dag_id: loaded.dag.dag_id.clone(),
        run_id: format!(
            "test__{}",
            logical_date.unwrap_or_else(Utc::now).to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
        ),
        task_id: target.task.clone(),
        map_index,
        map_item,
        try_number: 1,
        logical_date,
        queue: task.queue.clone(),
        operator,
        execution_timeout_ms: task.execution_timeout_ms,
        retry: task.retry_policy(),
        env: Default::default(),
        params: Some(params),
        conf: Some(conf),
        first_poke_at: None,
        queued_at: None,
        outlets: Vec::new(),
    };
    message.env = message.context_env();
    let settings = Settings::load()?;
    println!(
        "gust tasks test {}.{}: running operator `{}`; nothing is recorded",
        message.dag_id,
        message.task_id,
        message.operator.name()
    );
    let result = gust_worker::run_one(&settings, &message).await;
    let mut out = std::io::stdout().lock();
    if let Some(reason) = &result.failure_reason {
        writeln!(out, "reason: {reason}")?;
    }
    match &result.xcom {
        Some(value) => writeln!(out, "return_value: {}", serde_json::to_string_pretty(value).unwrap_or_default())?,
        None => writeln!(out, "return_value: (none)")?,
    }
    writeln!(out, "state: {}", result.state)?;
    if result.state == TaskState::UpForReschedule {
        writeln!(out, "(a sensor in reschedule mode whose condition does not hold yet: it would poke again later)")?;
    }
    Ok(matches!(result.state, TaskState::Success | TaskState::Skipped))
}
