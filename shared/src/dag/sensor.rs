//! Sensors (Airflow's `BaseSensorOperator`): tasks that wait for a condition
//! by poking it every `poke_interval` until it holds or `timeout` passes.
//! In `poke` mode a sensor keeps its worker slot between pokes; in
//! `reschedule` mode it frees it and its next poke waits in the broker's
//! delay queues (state `up_for_reschedule`). This module holds their
//! arguments and how a DAG file's arguments become them; the pokes
//! themselves are the worker's (`worker/src/operators/sensor.rs`).

use serde::{Deserialize, Serialize};

use super::{HttpArgs, SqlArgs};

/// Airflow's default `poke_interval`: 60 seconds.
pub const DEFAULT_POKE_INTERVAL_MS: u64 = 60_000;
/// Airflow's default sensor `timeout`: seven days.
pub const DEFAULT_SENSOR_TIMEOUT_MS: u64 = 7 * 24 * 60 * 60 * 1000;

/// How a sensor waits between pokes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SensorMode {
    /// Sleeps on its worker slot between pokes (for short waits).
    #[default]
    Poke,
    /// Frees its worker slot; the next poke waits in a delay queue (for long waits).
    Reschedule,
}

/// How every sensor waits, whatever it checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Waiting {
    /// `poke` or `reschedule`.
    pub mode: SensorMode,
    /// Time between pokes.
    pub poke_interval_ms: u64,
    /// Time after the first poke at which the sensor gives up (fails without retry).
    pub timeout_ms: u64,
    /// Whether giving up (or a failed check) skips the task instead of failing it.
    pub soft_fail: bool,
}

/// A sensor: what it checks and how it waits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sensor<C> {
    /// The condition poked.
    pub check: C,
    /// Mode, interval, timeout, soft fail.
    pub waiting: Waiting,
}

/// What `file_sensor` checks (Airflow's `FileSensor`): a path on the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCheck {
    /// The file or folder that must exist; a glob (`*`, `?`, `[…]`) matches any file.
    pub filepath: String,
}

/// What `external_task_sensor` checks (Airflow's `ExternalTaskSensor`): a
/// task, or a whole run, of another DAG for the same logical date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalTaskCheck {
    /// The other DAG.
    pub external_dag_id: String,
    /// Its task; without it the sensor waits for the other DAG's run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_task_id: Option<String>,
    /// States that satisfy the sensor; `[success]` by default.
    #[serde(default = "default_allowed_states")]
    pub allowed_states: Vec<String>,
    /// States that fail the sensor at once; none by default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_states: Vec<String>,
    /// The other run's logical date is this run's minus this (`1h`); the same date by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_delta_ms: Option<u64>,
}

fn default_allowed_states() -> Vec<String> {
    vec!["success".into()]
}

/// The arguments every sensor takes besides its check, as a DAG file writes them.
const WAITING_KEYS: [&str; 4] = ["mode", "poke_interval", "timeout", "soft_fail"];

/// Splits a sensor's arguments into its check's and its [`Waiting`].
pub(super) fn split_waiting(
    operator: &str,
    args: &serde_json::Map<String, serde_json::Value>,
) -> Result<(serde_json::Map<String, serde_json::Value>, Waiting), String> {
    let mut check = args.clone();
    let mut waiting_args = serde_json::Map::new();
    for key in WAITING_KEYS {
        if let Some(value) = check.remove(key) {
            waiting_args.insert(key.to_string(), value);
        }
    }
    let mode = match waiting_args.get("mode") {
        None => SensorMode::Poke,
        Some(value) => serde_json::from_value(value.clone())
            .map_err(|_| format!("operator `{operator}`: mode must be `poke` or `reschedule`, got {value}"))?,
    };
    let poke_interval_ms =
        duration_arg(operator, "poke_interval", waiting_args.get("poke_interval"))?.unwrap_or(DEFAULT_POKE_INTERVAL_MS);
    if poke_interval_ms == 0 {
        return Err(format!("operator `{operator}`: poke_interval must be longer than 0s"));
    }
    let timeout_ms =
        duration_arg(operator, "timeout", waiting_args.get("timeout"))?.unwrap_or(DEFAULT_SENSOR_TIMEOUT_MS);
    let soft_fail = match waiting_args.get("soft_fail") {
        None => false,
        Some(serde_json::Value::Bool(b)) => *b,
        Some(other) => return Err(format!("operator `{operator}`: soft_fail must be true or false, got {other}")),
    };
    Ok((check, Waiting { mode, poke_interval_ms, timeout_ms, soft_fail }))
}

/// A duration argument: `30s`, `5m`, `1h 30m`, or a number of seconds (as Airflow writes them).
fn duration_arg(operator: &str, field: &str, value: Option<&serde_json::Value>) -> Result<Option<u64>, String> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => match n.as_f64() {
            Some(seconds) if seconds >= 0.0 && seconds.is_finite() => Ok(Some((seconds * 1000.0) as u64)),
            _ => Err(format!("operator `{operator}`: {field} must be a positive number of seconds, got {n}")),
        },
        Some(serde_json::Value::String(text)) => super::parse::duration_ms(Some(text))
            .map_err(|problem| format!("operator `{operator}`: {field}: {problem}")),
        Some(other) => Err(format!("operator `{operator}`: {field} must be a duration such as 30s or 5m, got {other}")),
    }
}

impl FileCheck {
    /// Reads and checks `file_sensor`'s own arguments.
    pub(super) fn parse(args: serde_json::Map<String, serde_json::Value>) -> Result<Self, String> {
        let check: FileCheck = serde_json::from_value(serde_json::Value::Object(args))
            .map_err(|e| format!("operator `file_sensor`: {e}"))?;
        if check.filepath.trim().is_empty() {
            return Err("operator `file_sensor`: filepath is empty".into());
        }
        Ok(check)
    }
}

impl ExternalTaskCheck {
    /// Reads and checks `external_task_sensor`'s own arguments.
    pub(super) fn parse(mut args: serde_json::Map<String, serde_json::Value>) -> Result<Self, String> {
        let delta = duration_arg("external_task_sensor", "execution_delta", args.remove("execution_delta").as_ref())?;
        let mut check: ExternalTaskCheck = serde_json::from_value(serde_json::Value::Object(args))
            .map_err(|e| format!("operator `external_task_sensor`: {e}"))?;
        check.execution_delta_ms = delta;
        if check.external_dag_id.trim().is_empty() {
            return Err("operator `external_task_sensor`: external_dag_id is empty".into());
        }
        let known: &[&str] = if check.external_task_id.is_some() {
            &["success", "failed", "skipped", "upstream_failed", "removed", "running", "queued", "up_for_retry"]
        } else {
            &["success", "failed", "running", "queued"]
        };
        let what = if check.external_task_id.is_some() { "a task instance" } else { "a DAG run" };
        for state in check.allowed_states.iter().chain(&check.failed_states) {
            if !known.contains(&state.as_str()) {
                return Err(format!(
                    "operator `external_task_sensor`: `{state}` is not a state of {what}; use {}",
                    known.join(", ")
                ));
            }
        }
        if check.allowed_states.is_empty() {
            return Err("operator `external_task_sensor`: allowed_states is empty; it would never be satisfied".into());
        }
        Ok(check)
    }

    /// The fields that may hold templates.
    pub fn templated_fields(&self) -> Vec<&str> {
        std::iter::once(self.external_dag_id.as_str()).chain(self.external_task_id.as_deref()).collect()
    }

    /// The arguments with every templated field passed through `render(field name, text)`.
    pub fn render<E>(&self, render: &mut dyn FnMut(&str, &str) -> Result<String, E>) -> Result<Self, E> {
        Ok(ExternalTaskCheck {
            external_dag_id: render("external_dag_id", &self.external_dag_id)?,
            external_task_id: self.external_task_id.as_deref().map(|t| render("external_task_id", t)).transpose()?,
            ..self.clone()
        })
    }
}

impl FileCheck {
    /// The fields that may hold templates.
    pub fn templated_fields(&self) -> Vec<&str> {
        vec![self.filepath.as_str()]
    }

    /// The arguments with every templated field passed through `render(field name, text)`.
    pub fn render<E>(&self, render: &mut dyn FnMut(&str, &str) -> Result<String, E>) -> Result<Self, E> {
        Ok(FileCheck { filepath: render("filepath", &self.filepath)? })
    }
}

impl<C> Sensor<C> {
    /// The same sensor with its check passed through `f` (rendering).
    pub fn try_map<D, E>(&self, f: impl FnOnce(&C) -> Result<D, E>) -> Result<Sensor<D>, E> {
        Ok(Sensor { check: f(&self.check)?, waiting: self.waiting.clone() })
    }
}

/// Builds a sensor operator from a DAG file's arguments, if `operator` names one.
pub(super) fn parse_sensor(
    operator: &str,
    args: &serde_json::Map<String, serde_json::Value>,
) -> Option<Result<super::OperatorSpec, String>> {
    use super::OperatorSpec;
    let build = |args: &serde_json::Map<String, serde_json::Value>| -> Result<OperatorSpec, String> {
        let (check, waiting) = split_waiting(operator, args)?;
        let rename = |e: String| {
            e.replacen(&format!("operator `{}`", base_name(operator)), &format!("operator `{operator}`"), 1)
        };
        Ok(match operator {
            "http_sensor" => {
                OperatorSpec::HttpSensor(Sensor { check: HttpArgs::parse(&check).map_err(rename)?, waiting })
            }
            "sql_sensor" => OperatorSpec::SqlSensor(Sensor { check: SqlArgs::parse(&check).map_err(rename)?, waiting }),
            "file_sensor" => OperatorSpec::FileSensor(Sensor { check: FileCheck::parse(check)?, waiting }),
            _ => OperatorSpec::ExternalTaskSensor(Sensor { check: ExternalTaskCheck::parse(check)?, waiting }),
        })
    };
    matches!(operator, "http_sensor" | "sql_sensor" | "file_sensor" | "external_task_sensor").then(|| build(args))
}

/// The operator whose arguments a sensor's check shares (`http` for `http_sensor`).
fn base_name(operator: &str) -> &str {
    operator.strip_suffix("_sensor").unwrap_or(operator)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dag::OperatorSpec;

    fn args(json: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        json.as_object().expect("an object").clone()
    }

    fn sensor(operator: &str, json: serde_json::Value) -> Result<OperatorSpec, String> {
        parse_sensor(operator, &args(json)).expect("a sensor")
    }

    #[test]
    fn a_sensor_pokes_every_minute_for_a_week_by_default_as_airflow_does() {
        let OperatorSpec::FileSensor(file) = sensor("file_sensor", serde_json::json!({"filepath": "/x"})).unwrap()
        else {
            panic!("a file sensor")
        };
        assert_eq!(
            file.waiting,
            Waiting {
                mode: SensorMode::Poke,
                poke_interval_ms: 60_000,
                timeout_ms: DEFAULT_SENSOR_TIMEOUT_MS,
                soft_fail: false
            }
        );
    }

    #[test]
    fn waiting_arguments_take_durations_or_seconds_and_the_rest_goes_to_the_check() {
        let spec = sensor(
            "http_sensor",
            serde_json::json!({"url": "http://x/", "mode": "reschedule", "poke_interval": 5, "timeout": "2m", "soft_fail": true}),
        )
        .unwrap();
        let OperatorSpec::HttpSensor(http) = spec else { panic!("an http sensor") };
        assert_eq!(http.check.url.as_deref(), Some("http://x/"));
        assert_eq!(
            http.waiting,
            Waiting { mode: SensorMode::Reschedule, poke_interval_ms: 5_000, timeout_ms: 120_000, soft_fail: true }
        );
    }

    #[test]
    fn bad_sensor_arguments_name_the_operator_and_the_fix() {
        let cases = [
            (
                "file_sensor",
                serde_json::json!({"filepath": "/x", "mode": "smart"}),
                "mode must be `poke` or `reschedule`",
            ),
            ("file_sensor", serde_json::json!({"filepath": "/x", "poke_interval": "0s"}), "longer than 0s"),
            ("file_sensor", serde_json::json!({"filepath": "/x", "timeout": "soon"}), "timeout: bad duration `soon`"),
            ("file_sensor", serde_json::json!({"path": "/x"}), "operator `file_sensor`: unknown field `path`"),
            ("sql_sensor", serde_json::json!({"conn_id": "w", "sql": " "}), "operator `sql_sensor`: sql is empty"),
            ("http_sensor", serde_json::json!({}), "operator `http_sensor`: give `url`"),
            (
                "external_task_sensor",
                serde_json::json!({"external_dag_id": "a", "external_task_id": "t", "allowed_states": ["done"]}),
                "`done` is not a state of a task instance",
            ),
        ];
        for (operator, json, expected) in cases {
            let err = sensor(operator, json.clone()).unwrap_err();
            assert!(err.contains(expected), "{operator} {json}: {err}");
        }
        assert!(parse_sensor("http", &args(serde_json::json!({}))).is_none());
    }

    #[test]
    fn an_external_task_sensor_waits_for_success_of_the_same_logical_date_by_default() {
        let spec = sensor("external_task_sensor", serde_json::json!({"external_dag_id": "a", "external_task_id": "t"}));
        let OperatorSpec::ExternalTaskSensor(ext) = spec.unwrap() else { panic!("an external task sensor") };
        assert_eq!(ext.check.allowed_states, ["success"]);
        assert!(ext.check.failed_states.is_empty() && ext.check.execution_delta_ms.is_none());
        let delayed =
            sensor("external_task_sensor", serde_json::json!({"external_dag_id": "a", "execution_delta": "1h"}));
        let OperatorSpec::ExternalTaskSensor(ext) = delayed.unwrap() else { panic!("an external task sensor") };
        assert_eq!(ext.check.execution_delta_ms, Some(3_600_000));
    }
}
