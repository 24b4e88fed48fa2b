//! `gust dags test`: one whole DAG run on this machine with the daemons' own
//! code — the scheduler's folder scan, run scheduling (readiness, trigger
//! rules, branching, mapping), dispatch and template rendering, the worker's
//! delivery handling, operators, XComs and retries — on a throwaway
//! PostgreSQL database made next to `GUST__DATABASE__URL`'s (dropped after)
//! and an in-process broker ([`LocalBroker`]) instead of RabbitMQ. It prints
//! each task's state changes as they happen, then a summary and the log of
//! every failed task; `--junit` writes one test case per task instance.

use std::{
    collections::BTreeMap,
    io::Write,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, SecondsFormat, Utc};
use deadpool_postgres::Pool;
use gust_shared::{
    broker::LocalBroker,
    dag::resolve_params,
    db::{self, runs::NewRun, task_instances::listing, DbError},
    settings::{Settings, SettingsError},
    state::{RunState, TaskState},
};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::{
    args::DagTestArgs,
    tasks::{inputs, RenderError, RenderInputs},
};

/// How often the run's state is read.
const POLL: Duration = Duration::from_millis(200);
/// Most lines of a failed task's log printed.
const FAILED_LOG_LINES: i64 = 200;
/// How long the scheduler may take to register the DAG file.
const REGISTER_WITHIN: Duration = Duration::from_secs(30);

/// Why a DAG test could not run (a run that fails is a result, not an error).
#[derive(Debug, thiserror::Error)]
pub enum DagTestError {
    /// The DAG could not be found or parsed, or `--logical-date` or `--conf` is malformed.
    #[error(transparent)]
    Inputs(#[from] RenderError),
    /// The settings (the database URL) are broken.
    #[error("cannot read the settings: {0}")]
    Settings(#[from] SettingsError),
    /// A command-line value is malformed.
    #[error("{0}")]
    Argument(String),
    /// The throwaway database could not be made or used.
    #[error(
        "{0}; gust dags test needs PostgreSQL: set GUST__DATABASE__URL to a server where it may create a database"
    )]
    Database(#[from] DbError),
    /// The scheduler did not register the DAG file.
    #[error("the scheduler did not register DAG `{dag_id}` from {file}: {reason}")]
    NotRegistered {
        /// The DAG.
        dag_id: String,
        /// Its file.
        file: String,
        /// The import error, or that it took too long.
        reason: String,
    },
    /// The run did not finish within `--timeout`.
    #[error("the run did not finish within {0:?} (--timeout); task states are above")]
    Timeout(Duration),
    /// Writing the output or the JUnit file failed.
    #[error("cannot write {what}: {source}")]
    Write {
        /// The output or the file.
        what: String,
        /// What the system said.
        source: std::io::Error,
    },
}

fn write_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DagTestError {
    let what = what.into();
    move |source| DagTestError::Write { what, source }
}

/// One task instance as the test last saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskResult {
    /// Its row.
    pub ti_id: uuid::Uuid,
    /// The task.
    pub task_id: String,
    /// Its map index (-1 when not mapped).
    pub map_index: i32,
    /// Its state at the end.
    pub state: TaskState,
    /// Tries it took.
    pub try_number: i32,
    /// Seconds from its start to its end.
    pub duration: Option<f64>,
    /// Why it failed.
    pub failure_reason: Option<String>,
}

impl TaskResult {
    fn name(&self) -> String {
        if self.map_index < 0 {
            self.task_id.clone()
        } else {
            format!("{}[{}]", self.task_id, self.map_index)
        }
    }
}

/// Runs the command; true when the run succeeded.
pub async fn run(args: &DagTestArgs, out: &mut (impl Write + Send)) -> Result<bool, DagTestError> {
    let RenderInputs { loaded, logical_date, conf } = inputs(&args.dag, &args.folder, &args.run)?;
    resolve_params(&loaded.dag.params, &conf).map_err(|e| {
        DagTestError::Argument(format!("--conf does not fit the params of DAG `{}`: {e}", loaded.dag.dag_id))
    })?;
    let base = Settings::load()?;
    let scratch = format!("gust_dags_test_{}_{}", std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let url = db::with_database(&base.database.url, &scratch);
    let folder = std::env::temp_dir().join(&scratch);
    writeln!(out, "gust dags test {}: throwaway database {scratch}, in-process broker", loaded.dag.dag_id)
        .map_err(write_error("the output"))?;
    let result = async {
        db::migrate(&url).await?;
        std::fs::create_dir_all(&folder).map_err(write_error(folder.display().to_string()))?;
        let name = Path::new(&loaded.file).file_name().map(PathBuf::from).unwrap_or_else(|| "dag.yaml".into());
        std::fs::write(folder.join(&name), &loaded.text).map_err(write_error(folder.display().to_string()))?;
        let mut settings = base.clone();
        settings.database.url = url.clone();
        settings.dags.folder = folder.clone();
        let mut queues: Vec<String> = loaded.dag.tasks.iter().map(|t| t.queue.clone()).collect();
        queues.sort();
        queues.dedup();
        settings.worker.queues = queues;
        let run = Run { settings, dag_id: loaded.dag.dag_id.clone(), file: loaded.file.clone(), logical_date, conf };
        run.execute(args, out).await
    }
    .await;
    let _ = std::fs::remove_dir_all(&folder);
    if let Err(e) = db::drop_database(&url).await {
        let _ = writeln!(out, "warning: could not drop the throwaway database {scratch}: {e}");
    }
    let results = result?;
    if let Some(path) = &args.junit {
        std::fs::write(path, junit(&loaded.dag.dag_id, &results.1)).map_err(write_error(path.display().to_string()))?;
    }
    Ok(results.0 == RunState::Success)
}

/// One test run: the settings pointing at the throwaway database and folder.
struct Run {
    settings: Settings,
    dag_id: String,
    file: String,
    logical_date: Option<DateTime<Utc>>,
    conf: Map<String, Value>,
}

impl Run {
    /// Starts the scheduler and a worker on one in-process broker, triggers the run,
    /// follows it to its end, stops them; the run's state and its task instances.
    async fn execute(
        &self,
        args: &DagTestArgs,
        out: &mut (impl Write + Send),
    ) -> Result<(RunState, Vec<TaskResult>), DagTestError> {
        let broker = LocalBroker::default();
        let stop = CancellationToken::new();
        let scheduler = tokio::spawn(gust_scheduler::run_local(
            self.settings.clone(),
            Arc::new(broker.clone()),
            stop.clone().cancelled_owned(),
        ));
        let worker =
            tokio::spawn(gust_worker::run_local(self.settings.clone(), broker.clone(), stop.clone().cancelled_owned()));
        let pool = db::connect(&self.settings.database.url, 2).await?;
        let followed = async {
            let (version, run_id) = self.trigger(&pool).await?;
            writeln!(out, "triggered run {run_id} of DAG version {version}; task states as they change:")
                .map_err(write_error("the output"))?;
            self.follow(&pool, &run_id, args.timeout, out).await
        }
        .await;
        stop.cancel();
        let _ = scheduler.await;
        let _ = worker.await;
        let (state, results) = followed?;
        summary(&pool, &results, out).await?;
        for letter in broker.dead_letters() {
            writeln!(out, "dead letter ({}): {}", letter.reason, letter.detail).map_err(write_error("the output"))?;
        }
        writeln!(out, "run {state}").map_err(write_error("the output"))?;
        Ok((state, results))
    }

    /// Waits for the scheduler to register the DAG, unpauses it (a test run ignores
    /// `dags_are_paused_at_creation`, as Airflow's does), then creates a manual run as the API does.
    async fn trigger(&self, pool: &Pool) -> Result<(i64, String), DagTestError> {
        let started = Instant::now();
        let client = pool.get().await.map_err(DbError::from)?;
        let dag = loop {
            if let Some(dag) = db::dags::get(&client, &self.dag_id).await? {
                break dag;
            }
            let (errors, _) = db::import_errors::list(&client, 1, 0, "id").await?;
            if let Some(error) = errors.first() {
                return Err(self.not_registered(error.stacktrace.clone()));
            }
            if started.elapsed() > REGISTER_WITHIN {
                return Err(self.not_registered(format!("not registered within {REGISTER_WITHIN:?}")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        if dag.is_paused {
            db::dags::set_paused(&client, &self.dag_id, false).await?;
        }
        let now = Utc::now();
        let run_id =
            format!("test__{}", self.logical_date.unwrap_or(now).to_rfc3339_opts(SecondsFormat::Micros, false));
        let conf = Value::Object(self.conf.clone());
        let new_run = NewRun {
            dag_id: &self.dag_id,
            run_id: &run_id,
            run_type: "manual",
            logical_date: self.logical_date,
            data_interval: self.logical_date.map(|date| (date, date)),
            conf: &conf,
            dag_version_id: dag.latest_version_id,
            triggered_by: "test",
            triggering_user_name: None,
        };
        let run = db::runs::insert(&client, &new_run).await.map_err(|e| match e {
            db::runs::CreateRunError::Db(e) => DagTestError::Database(e),
            other => DagTestError::Argument(other.to_string()),
        })?;
        Ok((dag.latest_version_id, run.run_id))
    }

    fn not_registered(&self, reason: String) -> DagTestError {
        DagTestError::NotRegistered { dag_id: self.dag_id.clone(), file: self.file.clone(), reason }
    }

    /// Prints every task's state changes until the run ends (or `timeout` passes).
    async fn follow(
        &self,
        pool: &Pool,
        run_id: &str,
        timeout: Option<Duration>,
        out: &mut (impl Write + Send),
    ) -> Result<(RunState, Vec<TaskResult>), DagTestError> {
        let started = Instant::now();
        let mut seen: BTreeMap<(String, i32), (TaskState, i32)> = BTreeMap::new();
        loop {
            let client = pool.get().await.map_err(DbError::from)?;
            let run = db::runs::get(&client, &self.dag_id, run_id)
                .await?
                .ok_or_else(|| DbError::Corrupt(format!("run {run_id} disappeared")))?;
            let rows = listing::list_for_run(&client, run.id).await?;
            drop(client);
            let mut results = Vec::with_capacity(rows.len());
            for row in rows {
                let result = TaskResult {
                    ti_id: row.id,
                    task_id: row.task_id.clone(),
                    map_index: row.map_index,
                    state: row.state,
                    try_number: row.try_number,
                    duration: row.start_date.zip(row.end_date).map(|(s, e)| (e - s).num_milliseconds() as f64 / 1000.0),
                    failure_reason: row.failure_reason.clone(),
                };
                let key = (row.task_id, row.map_index);
                if seen.get(&key) != Some(&(result.state, result.try_number)) {
                    let tries =
                        if result.try_number > 1 { format!(" (try {})", result.try_number) } else { String::new() };
                    writeln!(
                        out,
                        "{}  {:<32} {}{tries}",
                        Utc::now().format("%H:%M:%S%.3f"),
                        result.name(),
                        result.state
                    )
                    .map_err(write_error("the output"))?;
                    seen.insert(key, (result.state, result.try_number));
                }
                results.push(result);
            }
            if run.state.is_finished() {
                return Ok((run.state, results));
            }
            if timeout.is_some_and(|limit| started.elapsed() > limit) {
                return Err(DagTestError::Timeout(timeout.unwrap_or_default()));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// The table of task instances, then the log of each failed one.
async fn summary(pool: &Pool, results: &[TaskResult], out: &mut (impl Write + Send)) -> Result<(), DagTestError> {
    let width = results.iter().map(|r| r.name().len()).max().unwrap_or(4).max(4);
    let mut text = format!("\n{:<width$}  {:<16} {:>5} {:>9}  reason\n", "task", "state", "tries", "seconds");
    for r in results {
        let seconds = r.duration.map(|d| format!("{d:.2}")).unwrap_or_default();
        let reason = r.failure_reason.as_deref().unwrap_or_default();
        text +=
            &format!("{:<width$}  {:<16} {:>5} {:>9}  {reason}\n", r.name(), r.state.as_str(), r.try_number, seconds);
    }
    for failed in results.iter().filter(|r| r.state == TaskState::Failed) {
        let client = pool.get().await.map_err(DbError::from)?;
        let lines = db::logs::read(&client, failed.ti_id, failed.try_number, 0, FAILED_LOG_LINES).await?;
        text += &format!("\n--- log of {} (try {}) ---\n", failed.name(), failed.try_number);
        for line in lines {
            text += &format!("{} [{}] {}\n", line.ts.format("%H:%M:%S"), line.stream, line.line);
        }
    }
    out.write_all(text.as_bytes()).map_err(write_error("the output"))?;
    Ok(())
}

/// JUnit XML: one test case per task instance, failed and upstream_failed ones failing.
fn junit(dag_id: &str, results: &[TaskResult]) -> String {
    let failures = results.iter().filter(|r| matches!(r.state, TaskState::Failed | TaskState::UpstreamFailed)).count();
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\">\n",
        escape(dag_id),
        results.len()
    );
    for r in results {
        let time = r.duration.unwrap_or(0.0);
        xml += &format!(
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{time:.3}\">",
            escape(dag_id),
            escape(&r.name())
        );
        match r.state {
            TaskState::Failed | TaskState::UpstreamFailed => {
                let reason = r.failure_reason.as_deref().unwrap_or(r.state.as_str());
                xml += &format!("<failure message=\"{}\">{}</failure>", escape(reason), escape(r.state.as_str()));
            }
            TaskState::Skipped => xml += "<skipped/>",
            _ => {}
        }
        xml += "</testcase>\n";
    }
    xml + "  </testsuite>\n</testsuites>\n"
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(task_id: &str, map_index: i32, state: TaskState, reason: Option<&str>) -> TaskResult {
        TaskResult {
            ti_id: uuid::Uuid::nil(),
            task_id: task_id.into(),
            map_index,
            state,
            try_number: 1,
            duration: Some(0.5),
            failure_reason: reason.map(str::to_string),
        }
    }

    #[test]
    fn junit_has_a_case_per_task_instance_and_fails_the_failed_ones() {
        let xml = junit(
            "etl",
            &[
                result("extract", -1, TaskState::Success, None),
                result("load", 2, TaskState::Failed, Some("exit code 3 <bad>")),
                result("report", -1, TaskState::Skipped, None),
            ],
        );
        assert!(xml.contains(r#"<testsuite name="etl" tests="3" failures="1">"#), "{xml}");
        assert!(xml.contains(r#"name="load[2]""#) && xml.contains(r#"message="exit code 3 &lt;bad&gt;""#), "{xml}");
        assert!(xml.contains("<skipped/>"), "{xml}");
    }
}
