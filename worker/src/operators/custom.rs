//! Custom operators: a task whose operator is not built in runs the
//! executable `gust-op-<name>` found on the worker's plugin path
//! (`GUST__WORKER__PLUGIN_PATH`), with protocol version 1:
//!
//! - stdin: one JSON object `{"protocol": 1, "task": {dag_id, run_id, task_id,
//!   map_index, try_number, logical_date, ti_id, queue}, "args": {...},
//!   "params": {...}, "conf": {...}}` (args rendered by the scheduler);
//! - the environment of a bash task (`GUST_DAG_ID`, `GUST_DS`, …), plus
//!   `$GUST_XCOM` (write JSON there: the `return_value` XCom) and
//!   `$GUST_RESULT` (optionally write `{"state": "skipped"}` or
//!   `{"state": "failed", "retry": false, "reason": "…"}` there);
//! - stdout and stderr go to the task's log; exit code 0 is success.
//!
//! Timeouts, shutdown and killing are those of `bash` ([`super::process`]).

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use gust_shared::{dag::OperatorSpec, message::TaskMessage, state::TaskState};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::{process, Operator, OperatorFuture, Outcome, RunLimits};
use crate::log_sink::{LogSink, Stream};

/// Custom operator executables are named this, then the operator's name.
pub const CUSTOM_PREFIX: &str = "gust-op-";

/// The version of the stdin/result protocol this worker speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// How long `gust-op-<name> --describe` may take when the worker starts.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest `--describe` output read.
const MAX_DESCRIBE_BYTES: usize = 256 * 1024;

/// The worker's plugin path: folders searched, in order, for `gust-op-<name>`.
#[derive(Debug, Clone, Default)]
pub struct Plugins {
    path: Vec<PathBuf>,
}

impl Plugins {
    /// Plugins found in `path`'s folders.
    pub fn new(path: Vec<PathBuf>) -> Self {
        Plugins { path }
    }

    /// The executable for operator `name`: the first `gust-op-<name>` on the path that is an executable file.
    pub fn find(&self, name: &str) -> Option<PathBuf> {
        if !is_operator_name(name) {
            return None;
        }
        self.path.iter().map(|dir| dir.join(format!("{CUSTOM_PREFIX}{name}"))).find(|file| is_executable(file))
    }

    /// Why a task with operator `name` on `queue` cannot run on worker `worker`, for people.
    pub fn missing(&self, name: &str, queue: &str, worker: &str) -> String {
        let path = if self.path.is_empty() {
            "(empty: GUST__WORKER__PLUGIN_PATH is not set)".to_string()
        } else {
            self.path.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":")
        };
        format!(
            "worker {worker} of queue `{queue}` has no operator `{name}`: no executable {CUSTOM_PREFIX}{name} on its plugin path {path}; install it in the workers of queue `{queue}` (or route the task with `queue:` to workers that have it)"
        )
    }
}

impl Plugins {
    /// Every operator on the plugin path (the first folder wins for a name),
    /// each as `{name, kind: "custom", path, version, description, args_schema}`
    /// from its `--describe` output; one that cannot describe itself is listed
    /// with `version: null` and `describe_error` (it can still run).
    pub async fn describe_all(&self) -> Vec<serde_json::Value> {
        let mut seen = BTreeSet::new();
        let mut described = Vec::new();
        for dir in &self.path {
            let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
                Ok(entries) => entries.filter_map(|entry| entry.ok().map(|entry| entry.path())).collect(),
                Err(e) => {
                    tracing::warn!(folder = %dir.display(), error = %e, "cannot read a plugin path folder; skipping it");
                    continue;
                }
            };
            files.sort();
            for file in files {
                let name = file.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_prefix(CUSTOM_PREFIX));
                let Some(name) = name.filter(|n| is_operator_name(n)).map(str::to_string) else { continue };
                if is_executable(&file) && seen.insert(name.clone()) {
                    described.push(describe(&name, &file).await);
                }
            }
        }
        described
    }
}

/// What one plugin says about itself, or why it could not say.
async fn describe(name: &str, file: &Path) -> serde_json::Value {
    let mut entry = serde_json::json!({"name": name, "kind": "custom", "path": file, "version": null});
    match run_describe(file).await.and_then(|output| parse_description(name, &output)) {
        Ok(description) => {
            for key in ["version", "description", "args_schema"] {
                if let Some(value) = description.get(key) {
                    entry[key] = value.clone();
                }
            }
            tracing::info!(operator = name, version = %entry["version"], path = %file.display(), "custom operator found");
        }
        Err(problem) => {
            tracing::warn!(operator = name, path = %file.display(), %problem, "custom operator cannot describe itself; it is advertised without a version");
            entry["describe_error"] = problem.into();
        }
    }
    entry
}

async fn run_describe(file: &Path) -> Result<Vec<u8>, String> {
    let child = Command::new(file)
        .arg("--describe")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run it with --describe: {e}"))?;
    let pgid = child.id().and_then(|id| i32::try_from(id).ok()).unwrap_or(0);
    let output = tokio::time::timeout(DESCRIBE_TIMEOUT, child.wait_with_output()).await;
    if pgid > 0 {
        // Whatever it started (or the whole group, when it hangs) ends with it.
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), nix::sys::signal::Signal::SIGKILL);
    }
    let output = output
        .map_err(|_| format!("--describe did not finish within {DESCRIBE_TIMEOUT:?}"))?
        .map_err(|e| format!("--describe failed: {e}"))?;
    if !output.status.success() {
        return Err(format!("--describe exited with {}", output.status));
    }
    Ok(output.stdout)
}

/// Checks `--describe` output: a JSON object `{"name", "version", "description", "args_schema"}` naming `name`.
fn parse_description(name: &str, output: &[u8]) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    if output.len() > MAX_DESCRIBE_BYTES {
        return Err(format!("--describe printed more than {MAX_DESCRIBE_BYTES} bytes"));
    }
    let value: serde_json::Value =
        serde_json::from_slice(output).map_err(|e| format!("--describe did not print one JSON object: {e}"))?;
    let serde_json::Value::Object(object) = value else {
        return Err("--describe did not print a JSON object".into());
    };
    if object.get("name").and_then(|n| n.as_str()) != Some(name) {
        return Err(format!(
            "--describe names it {}, but its file name says `{name}`",
            object.get("name").unwrap_or(&serde_json::Value::Null)
        ));
    }
    if !object.get("version").is_some_and(serde_json::Value::is_string) {
        return Err("--describe has no string `version`".into());
    }
    if object.get("args_schema").is_some_and(|schema| !schema.is_object() && !schema.is_boolean()) {
        return Err("--describe's `args_schema` is not a JSON schema (an object)".into());
    }
    Ok(object)
}

/// Whether `name` is a valid operator name: `[a-z0-9_-]+`.
fn is_operator_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn is_executable(file: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(file).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// The custom operator: runs the plugin executable.
pub struct Custom;

impl Operator for Custom {
    fn run<'a>(
        &'a self,
        task: &'a TaskMessage,
        log: &'a LogSink,
        limits: &'a RunLimits,
        stop: &'a CancellationToken,
    ) -> OperatorFuture<'a> {
        Box::pin(run_custom(task, log, limits, stop))
    }
}

/// What stdin carries to the executable.
pub fn stdin_document(task: &TaskMessage, args: &serde_json::Map<String, serde_json::Value>) -> serde_json::Value {
    serde_json::json!({
        "protocol": PROTOCOL_VERSION,
        "task": {
            "dag_id": task.dag_id,
            "run_id": task.run_id,
            "task_id": task.task_id,
            "map_index": task.map_index,
            "try_number": task.try_number,
            "logical_date": task.logical_date,
            "ti_id": task.ti_id,
            "queue": task.queue,
        },
        "args": args,
        "params": task.params.clone().unwrap_or_default(),
        "conf": task.conf.clone().unwrap_or_default(),
    })
}

async fn run_custom(task: &TaskMessage, log: &LogSink, limits: &RunLimits, stop: &CancellationToken) -> Outcome {
    let OperatorSpec::Custom { name, args } = &task.operator else {
        log.line(Stream::Gust, "custom operator got a message for a built-in operator").await;
        return Outcome::failed(None, "custom operator got a message for a built-in operator");
    };
    let Some(executable) = limits.plugins.find(name) else {
        let reason = limits.plugins.missing(name, &task.queue, "this worker");
        log.line(Stream::Gust, reason.clone()).await;
        return Outcome::failed(None, reason);
    };
    let mut files = match process::TryFiles::create(task, None, log).await {
        Ok(files) => files,
        Err(outcome) => return outcome,
    };
    let result_file = files.extra("result");
    let stdin = stdin_document(task, args).to_string().into_bytes();
    let mut command = Command::new(&executable);
    command.envs(&task.env).env("GUST_XCOM", &files.xcom_file).env("GUST_RESULT", &result_file);
    let what = executable.display().to_string();
    let (outcome, _) = process::run(task, command, &what, Some(stdin), &files.workdir, log, limits, stop).await;
    if outcome.interrupted {
        return outcome;
    }
    let outcome = match read_result(&result_file) {
        Ok(None) => outcome,
        Ok(Some(PluginResult::Failed { retry, reason })) => {
            let reason = reason.unwrap_or_else(|| format!("operator `{name}` reported failure"));
            let retry_text = if retry { "" } else { " (no retry)" };
            log.line(Stream::Gust, format!("operator `{name}` reported failure{retry_text}: {reason}")).await;
            Outcome { retryable: retry, ..Outcome::failed(outcome.exit_code, reason) }
        }
        Ok(Some(PluginResult::Skipped)) if outcome.state == TaskState::Success => {
            log.line(Stream::Gust, format!("operator `{name}` skipped the task")).await;
            return Outcome { state: TaskState::Skipped, ..outcome };
        }
        Ok(Some(PluginResult::Skipped)) => {
            let reason = format!("operator `{name}` asked to skip the task but exited with a failure; the try failed");
            log.line(Stream::Gust, reason.clone()).await;
            Outcome::failed(outcome.exit_code, reason)
        }
        Err(reason) => {
            log.line(Stream::Gust, reason.clone()).await;
            Outcome::failed(outcome.exit_code, reason)
        }
    };
    if outcome.state == TaskState::Success {
        return process::with_xcom(outcome, &files.xcom_file, None, limits, log).await;
    }
    outcome
}

/// What a custom operator may write to `$GUST_RESULT`.
#[derive(Debug, PartialEq)]
enum PluginResult {
    /// The task is to be skipped.
    Skipped,
    /// The try failed; `retry: false` forbids further tries.
    Failed { retry: bool, reason: Option<String> },
}

impl PluginResult {
    /// Reads `{"state": "skipped"}` or `{"state": "failed", "retry": bool, "reason": "…"}` (both optional).
    fn from_json(value: &serde_json::Value) -> Result<Self, String> {
        let object = value.as_object().ok_or("not a JSON object")?;
        let allowed: &[&str] = match object.get("state").and_then(|s| s.as_str()) {
            Some("skipped") => &["state"],
            Some("failed") => &["state", "retry", "reason"],
            Some(other) => return Err(format!("unknown state `{other}`")),
            None => return Err("no `state`".into()),
        };
        if let Some(key) = object.keys().find(|key| !allowed.contains(&key.as_str())) {
            return Err(format!("unknown field `{key}`"));
        }
        if object["state"] == "skipped" {
            return Ok(PluginResult::Skipped);
        }
        let retry = match object.get("retry") {
            None => true,
            Some(serde_json::Value::Bool(retry)) => *retry,
            Some(other) => return Err(format!("`retry` must be true or false, got {other}")),
        };
        let reason = match object.get("reason") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(reason)) => Some(reason.clone()),
            Some(other) => return Err(format!("`reason` must be a string, got {other}")),
        };
        Ok(PluginResult::Failed { retry, reason })
    }
}

/// The result file's verdict: none when absent or empty, or why it cannot be read.
fn read_result(file: &Path) -> Result<Option<PluginResult>, String> {
    let bytes = match std::fs::read(file) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => return Ok(None),
        Ok(bytes) => bytes,
        Err(_) => return Ok(None),
    };
    if bytes.len() > 64 * 1024 {
        return Err("$GUST_RESULT holds more than 64 KiB; write only {\"state\": \"failed\", \"retry\": false, \"reason\": \"…\"} or {\"state\": \"skipped\"}".into());
    }
    let parsed = serde_json::from_slice(&bytes).map_err(|e| e.to_string());
    parsed.and_then(|value| PluginResult::from_json(&value)).map(Some).map_err(|e| {
        format!(
            "$GUST_RESULT is not a valid result ({e}); write {{\"state\": \"failed\", \"retry\": false, \"reason\": \"…\"}} or {{\"state\": \"skipped\"}}, or nothing"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result_of(text: &str) -> Result<Option<PluginResult>, String> {
        let file = std::env::temp_dir().join(format!("gust-result-test-{}", uuid::Uuid::new_v4()));
        std::fs::write(&file, text).unwrap();
        let result = read_result(&file);
        let _ = std::fs::remove_file(file);
        result
    }

    #[test]
    fn a_result_file_says_failed_without_retry_or_skipped_and_garbage_is_an_error() {
        assert_eq!(result_of(""), Ok(None));
        assert_eq!(result_of(r#"{"state":"skipped"}"#), Ok(Some(PluginResult::Skipped)));
        assert_eq!(
            result_of(r#"{"state":"failed","retry":false,"reason":"bad input"}"#),
            Ok(Some(PluginResult::Failed { retry: false, reason: Some("bad input".into()) }))
        );
        assert_eq!(result_of(r#"{"state":"failed"}"#), Ok(Some(PluginResult::Failed { retry: true, reason: None })));
        assert!(result_of("nope").unwrap_err().contains("$GUST_RESULT is not a valid result"));
        assert!(result_of(r#"{"state":"exploded"}"#).is_err());
    }

    #[test]
    fn describe_output_must_be_an_object_naming_the_operator_with_a_version() {
        let ok = parse_description("hello", br#"{"name":"hello","version":"1.2","args_schema":{"type":"object"}}"#);
        assert_eq!(ok.unwrap()["version"], "1.2");
        assert!(parse_description("hello", b"hello 1.2").unwrap_err().contains("one JSON object"));
        assert!(parse_description("hello", br#"{"name":"hi","version":"1"}"#)
            .unwrap_err()
            .contains("file name says `hello`"));
        assert!(parse_description("hello", br#"{"name":"hello"}"#).unwrap_err().contains("version"));
        assert!(parse_description("hello", br#"{"name":"hello","version":"1","args_schema":3}"#).is_err());
    }

    #[test]
    fn an_operator_is_found_only_as_an_executable_on_the_plugin_path() {
        let dir = std::env::temp_dir().join(format!("gust-plugins-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("gust-op-hello");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        std::fs::write(dir.join("gust-op-plain"), "not executable").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let plugins = Plugins::new(vec!["/nonexistent".into(), dir.clone()]);
        assert_eq!(plugins.find("hello"), Some(script));
        assert_eq!(plugins.find("plain"), None);
        assert_eq!(plugins.find("../hello"), None);
        let why = plugins.missing("spark", "etl", "w1");
        assert!(
            why.contains("operator `spark`") && why.contains("queue `etl`") && why.contains(dir.to_str().unwrap()),
            "{why}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
