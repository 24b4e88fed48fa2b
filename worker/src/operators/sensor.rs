//! Sensors: `http_sensor`, `sql_sensor`, `file_sensor` and
//! `external_task_sensor` poke their condition until it holds (success), a
//! check fails (failed, retries apply) or `timeout` passes since the try's
//! first poke (failed without retry, as Airflow's `AirflowSensorTimeout`).
//! `soft_fail` turns both ends into `skipped`.
//!
//! In `poke` mode the sensor sleeps on its worker slot between pokes. In
//! `reschedule` mode one delivery is one poke: when the condition does not
//! hold the try ends as [`Outcome::rescheduled`], the worker records
//! `up_for_reschedule` and publishes the same try to a delay queue
//! (`worker/src/delivery.rs`), so a waiting sensor holds no slot.

use std::time::Duration;

use chrono::{DateTime, Utc};
use gust_shared::{
    dag::{ExternalTaskCheck, FileCheck, OperatorSpec, SensorMode, Waiting},
    db::sensors,
    message::TaskMessage,
    state::TaskState,
};
use tokio_util::sync::CancellationToken;

use super::{fail, http, sql, NextPoke, Operator, OperatorFuture, Outcome, RunLimits};
use crate::log_sink::{LogSink, Stream};

/// Every sensor operator: the poke differs, the waiting is the same.
pub struct Sensor;

impl Operator for Sensor {
    fn run<'a>(
        &'a self,
        task: &'a TaskMessage,
        log: &'a LogSink,
        limits: &'a RunLimits,
        stop: &'a CancellationToken,
    ) -> OperatorFuture<'a> {
        Box::pin(async move {
            let Some(waiting) = task.operator.waiting() else {
                return give_up(log, "sensor operator got a message for another operator", false, true).await;
            };
            let limit = task.execution_timeout_ms.map(Duration::from_millis);
            tokio::select! {
                outcome = sense(task, waiting, log, limits) => outcome,
                _ = async { match limit { Some(l) => tokio::time::sleep(l).await, None => std::future::pending().await } } => {
                    let reason = format!("timed out after {:?} (execution_timeout)", limit.unwrap_or_default());
                    give_up(log, reason, waiting.soft_fail, true).await
                }
                _ = stop.cancelled() => {
                    log.line(Stream::Gust, "worker shutdown: sensor stopped between pokes").await;
                    Outcome::interrupted(None)
                }
            }
        })
    }
}

/// What one poke found.
#[derive(Debug, Clone, PartialEq)]
enum Poke {
    /// The condition holds.
    Met,
    /// Not yet, and why (logged).
    NotYet(String),
    /// The check itself failed (a bad connection, a failed statement, a failed external task).
    Failed(String),
}

/// Pokes until the condition holds, the check fails or the timeout passes; in
/// `reschedule` mode, pokes once and parks the try when it has to wait.
async fn sense(task: &TaskMessage, waiting: &Waiting, log: &LogSink, limits: &RunLimits) -> Outcome {
    let first_poke_at = task.first_poke_at.unwrap_or_else(Utc::now);
    let timeout = chrono::Duration::milliseconds(i64::try_from(waiting.timeout_ms).unwrap_or(i64::MAX / 1000));
    let deadline = first_poke_at.checked_add_signed(timeout).unwrap_or(DateTime::<Utc>::MAX_UTC);
    loop {
        match poke(task, log, limits).await {
            Poke::Met => {
                log.line(Stream::Gust, "sensor condition met").await;
                return Outcome::success();
            }
            Poke::Failed(reason) => return give_up(log, reason, waiting.soft_fail, true).await,
            Poke::NotYet(why) => log.line(Stream::Gust, format!("not yet: {why}")).await,
        }
        let now = Utc::now();
        let left = (deadline - now).to_std().unwrap_or_default();
        if left.is_zero() {
            let waited = humantime::format_duration(Duration::from_millis(waiting.timeout_ms));
            let reason = format!(
                "sensor timed out: its condition did not hold within timeout {waited} of the first poke; a retry would not wait longer, so the task is not retried (raise timeout)"
            );
            return give_up(log, reason, waiting.soft_fail, false).await;
        }
        let wait = Duration::from_millis(waiting.poke_interval_ms).min(left);
        match waiting.mode {
            SensorMode::Reschedule => {
                let shown = humantime::format_duration(Duration::from_millis(wait.as_millis() as u64));
                log.line(
                    Stream::Gust,
                    format!("next poke in {shown}; the worker slot is free meanwhile (mode: reschedule)"),
                )
                .await;
                return Outcome::rescheduled(NextPoke { after: wait, first_poke_at });
            }
            SensorMode::Poke => tokio::time::sleep(wait).await,
        }
    }
}

/// The end of a sensor that gives up: `skipped` with `soft_fail`, otherwise `failed`.
async fn give_up(log: &LogSink, reason: impl Into<String>, soft_fail: bool, retryable: bool) -> Outcome {
    let failed = fail(log, reason).await;
    if soft_fail {
        log.line(Stream::Gust, "soft_fail: the task is skipped instead of failed").await;
        return Outcome { state: TaskState::Skipped, failure_reason: failed.failure_reason, ..Outcome::success() };
    }
    Outcome { retryable, ..failed }
}

async fn poke(task: &TaskMessage, log: &LogSink, limits: &RunLimits) -> Poke {
    match &task.operator {
        OperatorSpec::HttpSensor(sensor) => match http::send(&sensor.check, limits, log).await {
            Ok(response) if response.is_expected(&sensor.check) => Poke::Met,
            Ok(response) => Poke::NotYet(format!(
                "{} answered HTTP {}; waiting for {}",
                response.request,
                response.status,
                http::wanted(&sensor.check)
            )),
            Err(reason) => Poke::Failed(reason),
        },
        OperatorSpec::SqlSensor(sensor) => {
            let session = match sql::Session::open(&sensor.check, limits, log).await {
                Ok(session) => session,
                Err(reason) => return Poke::Failed(reason),
            };
            let rows = match session.query(1).await {
                Ok(rows) => rows,
                Err(reason) => return Poke::Failed(reason),
            };
            match rows.first().map(sql::first_cell) {
                None => Poke::NotYet("the query returned no rows".into()),
                Some(Err(reason)) => Poke::Failed(reason),
                Some(Ok(value)) if is_truthy(&value) => Poke::Met,
                Some(Ok(value)) => Poke::NotYet(format!("the first cell is {value}")),
            }
        }
        OperatorSpec::FileSensor(sensor) => file_exists(&sensor.check),
        OperatorSpec::ExternalTaskSensor(sensor) => external_task(&sensor.check, task, limits).await,
        other => Poke::Failed(format!("operator `{}` is not a sensor", other.name())),
    }
}

/// Airflow's `SqlSensor` rule: the first cell counts unless it is null, false, 0 or empty.
fn is_truthy(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Null => false,
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::Number(n) => n.as_f64() != Some(0.0),
        serde_json::Value::String(s) => !s.is_empty() && s != "0",
        serde_json::Value::Array(items) => !items.is_empty(),
        serde_json::Value::Object(map) => !map.is_empty(),
    }
}

fn file_exists(check: &FileCheck) -> Poke {
    let path = check.filepath.as_str();
    if !path.contains(['*', '?', '[']) {
        return match std::path::Path::new(path).try_exists() {
            Ok(true) => Poke::Met,
            Ok(false) => Poke::NotYet(format!("{path} does not exist")),
            Err(e) => Poke::Failed(format!("cannot look for {path}: {e}")),
        };
    }
    match glob::glob(path) {
        Err(e) => Poke::Failed(format!("filepath `{path}` is not a valid pattern: {e}")),
        Ok(mut matches) => match matches.next() {
            Some(Ok(_)) => Poke::Met,
            Some(Err(e)) => Poke::Failed(format!("cannot look for {path}: {e}")),
            None => Poke::NotYet(format!("nothing matches {path}")),
        },
    }
}

async fn external_task(check: &ExternalTaskCheck, task: &TaskMessage, limits: &RunLimits) -> Poke {
    let Some(logical_date) = task.logical_date else {
        return Poke::Failed(
            "this run has no logical date, and external_task_sensor finds the other DAG's run by logical date; trigger the run with a logical_date".into(),
        );
    };
    let delta = chrono::Duration::milliseconds(check.execution_delta_ms.unwrap_or(0) as i64);
    let date = logical_date - delta;
    let dag = &check.external_dag_id;
    let client = match limits.gust_db.get().await {
        Ok(client) => client,
        Err(e) => return Poke::NotYet(format!("the gust database is unreachable ({e})")),
    };
    let shown_date = date.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let found = match &check.external_task_id {
        None => {
            sensors::run_state(&client, dag, date).await.map(|run| run.map(|(run_id, state)| (run_id, vec![state])))
        }
        Some(task_id) => sensors::task_states(&client, dag, task_id, date).await,
    };
    let what = match &check.external_task_id {
        Some(task_id) => format!("task {dag}.{task_id}"),
        None => format!("DAG {dag}"),
    };
    match found {
        Err(e) => Poke::NotYet(format!("reading {what} failed ({e})")),
        Ok(None) => Poke::NotYet(format!("{dag} has no run for logical date {shown_date}")),
        Ok(Some((run_id, states))) => judge(&what, &run_id, &states, check),
    }
}

/// The verdict on the other task's instances (or run) in `run_id`.
fn judge(what: &str, run_id: &str, states: &[String], check: &ExternalTaskCheck) -> Poke {
    if states.is_empty() {
        return Poke::NotYet(format!("{what} has no instance in run {run_id} yet"));
    }
    if let Some(bad) = states.iter().find(|s| check.failed_states.contains(s)) {
        return Poke::Failed(format!("{what} is {bad} in run {run_id}, one of failed_states"));
    }
    if states.iter().all(|s| check.allowed_states.contains(s)) {
        return Poke::Met;
    }
    Poke::NotYet(format!(
        "{what} is {} in run {run_id}; waiting for {}",
        states.join(", "),
        check.allowed_states.join(" or ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(allowed: &[&str], failed: &[&str]) -> ExternalTaskCheck {
        ExternalTaskCheck {
            external_dag_id: "up".into(),
            external_task_id: Some("t".into()),
            allowed_states: allowed.iter().map(|s| s.to_string()).collect(),
            failed_states: failed.iter().map(|s| s.to_string()).collect(),
            execution_delta_ms: None,
        }
    }

    fn states(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn an_external_task_is_met_when_every_instance_is_allowed_and_failed_when_one_is_in_failed_states() {
        let c = check(&["success"], &["failed"]);
        assert_eq!(judge("t", "r", &states(&["success", "success"]), &c), Poke::Met);
        assert!(matches!(judge("t", "r", &states(&["success", "running"]), &c), Poke::NotYet(_)));
        assert!(matches!(judge("t", "r", &states(&["success", "failed"]), &c), Poke::Failed(_)));
        assert!(matches!(judge("t", "r", &[], &c), Poke::NotYet(_)));
        let lenient = check(&["success", "skipped"], &[]);
        assert_eq!(judge("t", "r", &states(&["skipped"]), &lenient), Poke::Met);
        assert!(matches!(judge("t", "r", &states(&["failed"]), &lenient), Poke::NotYet(_)));
    }

    #[test]
    fn a_sql_sensor_counts_its_first_cell_as_airflow_does() {
        use serde_json::json;
        for yes in [json!(true), json!(1), json!(2.5), json!("x"), json!([0])] {
            assert!(is_truthy(&yes), "{yes}");
        }
        for no in [json!(null), json!(false), json!(0), json!(0.0), json!(""), json!("0"), json!([])] {
            assert!(!is_truthy(&no), "{no}");
        }
    }

    #[test]
    fn a_file_sensor_finds_a_path_or_a_glob_match() {
        let dir = std::env::temp_dir().join(format!("gust-file-sensor-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let exact = FileCheck { filepath: dir.join("ready").display().to_string() };
        let pattern = FileCheck { filepath: dir.join("part-*.csv").display().to_string() };
        assert!(matches!(file_exists(&exact), Poke::NotYet(_)));
        assert!(matches!(file_exists(&pattern), Poke::NotYet(_)));
        std::fs::write(dir.join("ready"), b"").unwrap();
        std::fs::write(dir.join("part-0001.csv"), b"").unwrap();
        assert_eq!((file_exists(&exact), file_exists(&pattern)), (Poke::Met, Poke::Met));
        assert!(matches!(file_exists(&FileCheck { filepath: "/tmp/[".into() }), Poke::Failed(_)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
