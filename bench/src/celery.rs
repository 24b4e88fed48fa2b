//! Celery, the baseline gust is compared with: a virtualenv with a pinned
//! Celery, N prefork workers as child processes (same worker count and
//! concurrency as gust), and the publisher in `bench/celery/bench_celery.py`.
//!
//! Each repetition measures Celery once per result backend (PostgreSQL, what
//! Airflow uses, and `rpc://`, what Celery users pick for speed), in three
//! phases on one set of workers:
//! 1. the workers alone: N noop tasks are published before any worker runs;
//!    the workers then start together (a barrier in `worker_ready`) and the
//!    figure is N / (first task start → last result stored), from times the
//!    tasks record themselves, so the publisher's speed is not in it;
//! 2. with the publisher: N tasks sent to the running workers (one producer,
//!    as `group(...).apply_async()` sends them), send → last result stored
//!    (the publisher-inclusive figure);
//! 3. a chain: hop = start(n+1) − end(n) as recorded inside the tasks.
//!
//! Completion is counted from the sizes of the times files the tasks append
//! to (see [`times`]), polled every 50 ms; the end times come from the lines,
//! so the poll interval does not enter the figures.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context};
use gust_shared::db;
use serde::Deserialize;
use tokio::process::Command;

use crate::{
    cleanup,
    procs::{self, ChildProcess, Spawn},
    scenarios::{chain::ChainRun, m, repeat, Ctx, Measurement, ScenarioOutcome},
    stack::{short_id, with_database},
};

/// The Celery release compared against.
pub const CELERY_VERSION: &str = "5.7.0";
/// What the virtualenv gets.
const PACKAGES: &[&str] = &["celery==5.7.0", "sqlalchemy", "psycopg2-binary"];
/// Longest wait for the workers to be ready.
const STARTUP_PATIENCE: Duration = Duration::from_secs(90);
/// Longest one publishing step may take.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest the workers may take to finish one phase.
const PHASE_TIMEOUT: Duration = Duration::from_secs(600);
/// How often the times files are counted while waiting.
const POLL: Duration = Duration::from_millis(50);
/// Longest `pip install` may take.
const PIP_TIMEOUT: Duration = Duration::from_secs(900);

mod times;

/// A result backend Celery is measured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `db+postgresql+psycopg2` on a fresh database: what Airflow's CeleryExecutor uses.
    Postgres,
    /// `rpc://`: results sent back over RabbitMQ, what Celery users pick for speed.
    Rpc,
}

impl Backend {
    /// Every backend, in the order a repetition starts with.
    pub const ALL: [Backend; 2] = [Backend::Postgres, Backend::Rpc];

    /// The suffix of its metric keys.
    pub fn suffix(self) -> &'static str {
        match self {
            Backend::Postgres => "pg",
            Backend::Rpc => "rpc",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Backend::Postgres => "PostgreSQL results",
            Backend::Rpc => "rpc:// results",
        }
    }
}

/// Key of Celery's worker throughput (tasks preloaded, publisher not measured) with `backend`.
pub fn workers_throughput_key(backend: Backend) -> String {
    format!("fanout_workers_tasks_per_s_{}", backend.suffix())
}

/// Key of Celery's publisher-inclusive fan-out throughput (send → last result) with `backend`.
pub fn publisher_inclusive_key(backend: Backend) -> String {
    format!("fanout_tasks_per_s_{}", backend.suffix())
}

/// Key prefix of Celery's chain metrics with `backend`.
pub fn chain_prefix(backend: Backend) -> String {
    format!("chain_{}_", backend.suffix())
}

/// Phase letters of the times lines.
const PRELOADED: char = 'p';
const GROUP: char = 'g';
const CHAIN: char = 'c';

/// What a publishing step of `bench_celery.py` prints.
#[derive(Debug, Deserialize)]
struct Sent {
    error: Option<String>,
    celery_version: Option<String>,
    /// When the first send started (epoch seconds).
    started: Option<f64>,
    /// How long sending took.
    send_s: Option<f64>,
}

/// Makes sure `bench/.venv` has Celery; returns its folder, or why Celery is unavailable.
pub async fn ensure_venv(workspace: &Path) -> Result<PathBuf, String> {
    let venv = workspace.join("bench/.venv");
    if installed_version(&venv).await.as_deref() == Some(CELERY_VERSION) {
        return Ok(venv);
    }
    eprintln!("[celery] creating {} with {}", venv.display(), PACKAGES.join(" "));
    if !venv.join("bin/python").exists() {
        run_logged("python3", &["-m", "venv", &venv.display().to_string()], PIP_TIMEOUT)
            .await
            .map_err(|e| format!("creating the virtualenv: {e}"))?;
    }
    let pip = venv.join("bin/pip").display().to_string();
    let mut args = vec!["install", "--quiet"];
    args.extend_from_slice(PACKAGES);
    run_logged(&pip, &args, PIP_TIMEOUT).await.map_err(|e| format!("pip install {}: {e}", PACKAGES.join(" ")))?;
    match installed_version(&venv).await {
        Some(v) if v == CELERY_VERSION => Ok(venv),
        other => Err(format!("after pip install, the virtualenv has Celery {other:?}, not {CELERY_VERSION}")),
    }
}

async fn installed_version(venv: &Path) -> Option<String> {
    let python = venv.join("bin/python");
    let probe = "import celery, sqlalchemy, psycopg2; print(celery.__version__)";
    procs::output_of(&python.display().to_string(), &["-c", probe]).await
}

/// Runs a command; on failure returns the end of its output.
async fn run_logged(program: &str, args: &[&str], timeout: Duration) -> Result<(), String> {
    let run = Command::new(program).args(args).stdin(Stdio::null()).output();
    let output = tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| format!("timed out after {timeout:?}"))?
        .map_err(|e| e.to_string())?;
    if output.status.success() {
        return Ok(());
    }
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let lines: Vec<&str> = text.lines().collect();
    Err(format!("{} ({})", lines[lines.len().saturating_sub(5)..].join(" / "), output.status))
}

/// kombu spells the default vhost `//`; gust's URL spells it `/%2f`.
fn kombu_url(amqp_url: &str) -> String {
    for suffix in ["/%2f", "/%2F"] {
        if let Some(base) = amqp_url.strip_suffix(suffix) {
            return format!("{base}//");
        }
    }
    amqp_url.to_string()
}

/// SQLAlchemy's URL for the database backend: `db+postgresql+psycopg2://…`
/// (named explicitly: SQLAlchemy 2.1 defaults `postgresql://` to psycopg 3).
fn backend_url(db_url: &str) -> String {
    let rest = db_url.split_once("://").map_or(db_url, |(_, rest)| rest);
    format!("db+postgresql+psycopg2://{rest}")
}

/// Runs the Celery fan-out and chain `ctx.repeat` times with each result backend; "unavailable" when Celery cannot be installed.
pub async fn run(ctx: &Ctx) -> ScenarioOutcome {
    let venv = match ensure_venv(&ctx.workspace).await {
        Ok(venv) => venv,
        Err(reason) => {
            eprintln!("[celery] unavailable: {reason}");
            return ScenarioOutcome::unavailable("celery", format!("unavailable: {reason}"));
        }
    };
    repeat(ctx, "celery", async |i| once(ctx, &venv, i).await).await.note(notes(ctx)).note(format!(
        "fan-out workers alone: {n} noop tasks published first (fanout_send_tasks_per_s_*: that publisher alone), then \
         the workers start together and take them: N / (first task start → last result stored), times recorded by \
         the tasks; fan-out with publisher: {n} tasks sent to the running workers (one producer, as a group sends them), send → last result stored; \
         chain: {} immutable noop signatures, hop = start(n+1) − end(n) recorded inside the tasks; completion counted \
         from the tasks' times files every 50 ms, end times read from them (no result-table poll)",
        ctx.chain_len,
        n = ctx.fanout_tasks
    ))
}

fn notes(ctx: &Ctx) -> String {
    format!(
        "Celery {CELERY_VERSION}, {} workers × `--concurrency {} --pool prefork`, task_acks_late=True, \
         worker_prefetch_multiplier={} (the same prefetch as gust's workers), durable classic queue; each repetition \
         runs once with result backend db+postgresql+psycopg2 (fresh database, keys *_pg) and once with rpc:// \
         (non-persistent replies to one queue that no client drains, keys *_rpc), alternating which goes first; \
         each prefork child connects for results before the workers start (with PostgreSQL by storing one \
         warm-up result)",
        ctx.workers, ctx.concurrency, ctx.prefetch_multiplier
    )
}

/// Repetition `i`: every backend, the first one alternating between repetitions.
async fn once(ctx: &Ctx, venv: &Path, i: usize) -> anyhow::Result<Vec<Measurement>> {
    let mut backends = Backend::ALL;
    backends.rotate_left(i % Backend::ALL.len());
    let mut out = Vec::new();
    for backend in backends {
        out.extend(with_backend(ctx, venv, backend).await.with_context(|| format!("with {}", backend.label()))?);
    }
    Ok(out)
}

/// Where one measurement's processes and files live.
struct Setup<'a> {
    venv: &'a Path,
    app_dir: PathBuf,
    dir: PathBuf,
    times: PathBuf,
    env: Vec<(String, String)>,
}

/// One backend: fresh queue (and database), the three phases, everything dropped afterwards.
async fn with_backend(ctx: &Ctx, venv: &Path, backend: Backend) -> anyhow::Result<Vec<Measurement>> {
    let id = short_id();
    let queue = format!("bench-{id}.celery");
    let dir = std::env::temp_dir().join(format!("gust-bench-celery-{id}"));
    let (ready, times) = (dir.join("ready"), dir.join("times"));
    std::fs::create_dir_all(&ready)?;
    std::fs::create_dir_all(&times)?;
    let db_url =
        (backend == Backend::Postgres).then(|| with_database(&ctx.db_base, &format!("gust_bench_celery_{id}")));
    if let Some(db_url) = &db_url {
        cleanup::track_database(db_url);
        db::ensure_database_exists(db_url).await?;
    }
    // Celery declares a durable queue and a direct exchange, both named after the queue; rpc adds the reply queue.
    let (queues, exchanges) = (vec![queue.clone(), format!("{queue}.replies")], vec![queue.clone()]);
    cleanup::track_broker(&queues, &exchanges);
    let app_dir = ctx.workspace.join("bench/celery");
    let backend_setting = db_url.as_deref().map_or_else(|| "rpc://".to_string(), backend_url);
    let env = vec![
        ("BENCH_BROKER_URL".to_string(), kombu_url(&ctx.amqp_url)),
        ("BENCH_BACKEND_URL".to_string(), backend_setting),
        ("BENCH_QUEUE".to_string(), queue.clone()),
        ("BENCH_READY_DIR".to_string(), ready.display().to_string()),
        ("BENCH_WORKERS".to_string(), ctx.workers.to_string()),
        ("BENCH_TIMES_DIR".to_string(), times.display().to_string()),
        ("BENCH_PREFETCH_MULTIPLIER".to_string(), ctx.prefetch_multiplier.to_string()),
        ("PYTHONPATH".to_string(), app_dir.display().to_string()),
    ];
    let setup = Setup { venv, app_dir, dir: dir.clone(), times, env };
    let mut workers = Vec::new();
    let result = phases(ctx, &setup, backend, &id, &queue, &mut workers).await;
    let stops = workers.into_iter().map(|w| w.terminate(Duration::from_secs(20)));
    futures_util::future::join_all(stops).await;
    cleanup::delete_broker_objects(&ctx.amqp_url, &queues, &exchanges).await;
    cleanup::untrack_broker(&queues, &exchanges);
    if let Some(db_url) = &db_url {
        match db::drop_database(db_url).await {
            Ok(()) => cleanup::untrack_database(db_url),
            Err(e) => eprintln!("warning: dropping the Celery result database: {e}"),
        }
    }
    if result.is_ok() && !ctx.keep_logs {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result.map_err(|e| e.context(format!("Celery logs kept in {}", dir.display())))
}

/// Preloaded fan-out, workers' start, group fan-out, chain; returns the figures.
async fn phases(
    ctx: &Ctx,
    setup: &Setup<'_>,
    backend: Backend,
    id: &str,
    queue: &str,
    workers: &mut Vec<ChildProcess>,
) -> anyhow::Result<Vec<Measurement>> {
    let n = ctx.fanout_tasks;
    let preload = publish(setup, "publish", n, PRELOADED).await?;
    start_workers(ctx, setup, id, queue, workers).await?;
    wait_for_finished(setup, n as u64, workers, "preloaded fan-out").await?;
    let group = publish(setup, "publish", n, GROUP).await?;
    wait_for_finished(setup, 2 * n as u64, workers, "fan-out").await?;
    let chain = publish(setup, "chain", ctx.chain_len, CHAIN).await?;
    wait_for_finished(setup, (2 * n + ctx.chain_len) as u64, workers, "chain").await?;

    let all = times::read_all(&setup.times)?;
    let preloaded = times::window(&times::phase(&all, PRELOADED, n)?).context("no preloaded task ran")?;
    let grouped = times::window(&times::phase(&all, GROUP, n)?).context("no fan-out task ran")?;
    let chained = times::phase(&all, CHAIN, ctx.chain_len)?;
    let (b, label) = (backend.suffix(), backend.label());
    let fanout_s = grouped.last_stored - group.started;
    let mut out = vec![
        m(
            &workers_throughput_key(backend),
            &format!("fan-out, workers alone (preloaded; first start → last result), {label}"),
            "tasks/s",
            n as f64 / preloaded.seconds(),
        ),
        m(
            &format!("fanout_workers_s_{b}"),
            &format!("fan-out wall time, workers alone, {label}"),
            "s",
            preloaded.seconds(),
        ),
        m(
            &format!("fanout_send_tasks_per_s_{b}"),
            &format!("publisher alone: tasks sent with no worker running, {label}"),
            "tasks/s",
            n as f64 / preload.send_s,
        ),
        m(
            &publisher_inclusive_key(backend),
            &format!("fan-out with its publisher (send → last result), {label}"),
            "tasks/s",
            n as f64 / fanout_s,
        ),
        m(&format!("fanout_s_{b}"), &format!("fan-out wall time with its publisher, {label}"), "s", fanout_s),
        m(
            &format!("fanout_send_s_{b}"),
            &format!("time to send the tasks to running workers, {label}"),
            "s",
            group.send_s,
        ),
    ];
    let last_end = chained.iter().map(|t| t.end).fold(f64::NEG_INFINITY, f64::max);
    let chain_run = ChainRun { hops_ms: times::hops_ms(&chained), total_s: last_end - chain.started, split: None };
    for mut measurement in chain_run.measurements(&chain_prefix(backend)) {
        measurement.label = if measurement.key.ends_with("run_s") {
            format!("chain run time (send → last task returned), {label}")
        } else {
            format!("chain {}, {label}", measurement.label)
        };
        out.push(measurement);
    }
    Ok(out)
}

/// When a publishing step started sending and how long it took.
struct Published {
    started: f64,
    send_s: f64,
}

/// Runs `bench_celery.py <step> --n <n> --phase <phase>` and reads what it printed.
async fn publish(setup: &Setup<'_>, step: &str, n: usize, phase: char) -> anyhow::Result<Published> {
    let log = setup.dir.join(format!("publish-{phase}.log"));
    let run = Command::new(setup.venv.join("bin/python"))
        .arg(setup.app_dir.join("bench_celery.py"))
        .args([step, "--n", &n.to_string(), "--phase", &phase.to_string()])
        .envs(setup.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(&setup.app_dir)
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(PUBLISH_TIMEOUT, run)
        .await
        .with_context(|| format!("`bench_celery.py {step}` timed out after {PUBLISH_TIMEOUT:?}"))??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().rev().find(|l| l.trim_start().starts_with('{')).with_context(|| {
        format!("`bench_celery.py {step}` printed no JSON ({}); its log: {}", output.status, procs::tail(&log, 10))
    })?;
    let sent: Sent = serde_json::from_str(line).with_context(|| format!("parsing the publisher's JSON {line}"))?;
    if let Some(error) = sent.error {
        bail!("`bench_celery.py {step}` failed: {error}; its log: {}", procs::tail(&log, 10));
    }
    if let Some(version) = &sent.celery_version {
        ensure!(version == CELERY_VERSION, "the publisher ran Celery {version}, not {CELERY_VERSION}");
    }
    Ok(Published {
        started: sent.started.context("the publisher printed no start time")?,
        send_s: sent.send_s.context("the publisher printed no send time")?,
    })
}

/// Starts `ctx.workers` prefork workers and waits until every one is ready.
async fn start_workers(
    ctx: &Ctx,
    setup: &Setup<'_>,
    id: &str,
    queue: &str,
    workers: &mut Vec<ChildProcess>,
) -> anyhow::Result<()> {
    for i in 0..ctx.workers {
        let args = [
            "-A",
            "bench_celery",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            &ctx.concurrency.to_string(),
            "-Q",
            queue,
            "-n",
            &format!("bench{i}-{id}@%h"),
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "WARNING",
        ];
        workers.push(ChildProcess::spawn(Spawn {
            name: &format!("celery-worker-{i}"),
            program: &setup.venv.join("bin/celery"),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: setup.env.clone(),
            cwd: Some(&setup.app_dir),
            log_dir: &setup.dir,
            own_group: true,
        })?);
    }
    let ready = setup.dir.join("ready");
    let deadline = Instant::now() + STARTUP_PATIENCE;
    while std::fs::read_dir(&ready)?.count() < ctx.workers {
        for worker in workers.iter_mut() {
            worker.ensure_running()?;
        }
        if Instant::now() > deadline {
            bail!("{} Celery workers were not ready within {STARTUP_PATIENCE:?}", ctx.workers);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Waits until the times files hold `expected` lines in all.
async fn wait_for_finished(
    setup: &Setup<'_>,
    expected: u64,
    workers: &mut [ChildProcess],
    what: &str,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + PHASE_TIMEOUT;
    loop {
        let finished = times::finished(&setup.times)?;
        if finished >= expected {
            ensure!(finished == expected, "{finished} tasks finished, only {expected} were sent (redelivered?)");
            return Ok(());
        }
        for worker in workers.iter_mut() {
            worker.ensure_running()?;
        }
        if Instant::now() > deadline {
            bail!("the {what} did not finish within {PHASE_TIMEOUT:?} ({finished} of {expected} tasks so far)");
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_translated_for_kombu_and_sqlalchemy() {
        assert_eq!(kombu_url("amqp://guest:guest@127.0.0.1:5672/%2f"), "amqp://guest:guest@127.0.0.1:5672//");
        assert_eq!(kombu_url("amqp://u:p@h:1/vh"), "amqp://u:p@h:1/vh");
        assert_eq!(
            backend_url("postgres://postgres@127.0.0.1:5432/x"),
            "db+postgresql+psycopg2://postgres@127.0.0.1:5432/x"
        );
    }

    #[test]
    fn publisher_output_parses() {
        let sent: Sent = serde_json::from_str(
            r#"{"started": 1764512345.5, "send_s": 0.25, "celery_version": "5.7.0", "queue": "q", "reply_queue": "q.replies"}"#,
        )
        .unwrap();
        assert_eq!((sent.started, sent.send_s), (Some(1764512345.5), Some(0.25)));
        let failed: Sent = serde_json::from_str(r#"{"error": "boom"}"#).unwrap();
        assert_eq!(failed.error.as_deref(), Some("boom"));
    }

    #[test]
    fn every_backend_has_its_own_keys() {
        assert_eq!(workers_throughput_key(Backend::Postgres), "fanout_workers_tasks_per_s_pg");
        assert_eq!(workers_throughput_key(Backend::Rpc), "fanout_workers_tasks_per_s_rpc");
        assert_eq!(publisher_inclusive_key(Backend::Rpc), "fanout_tasks_per_s_rpc");
        assert_eq!(chain_prefix(Backend::Postgres), "chain_pg_");
    }
}
