//! Celery, the baseline gust is compared with: a virtualenv with a pinned
//! Celery, N prefork workers as child processes (same worker count and
//! concurrency as gust), and the driver in `bench/celery/bench_celery.py`,
//! whose JSON output is parsed here.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
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
/// Longest the driver may run (fan-out plus chain).
const DRIVER_TIMEOUT: Duration = Duration::from_secs(1200);
/// Longest `pip install` may take.
const PIP_TIMEOUT: Duration = Duration::from_secs(900);

/// The driver's JSON.
#[derive(Debug, Deserialize)]
struct DriverOutput {
    error: Option<String>,
    celery_version: Option<String>,
    fanout: Option<Fanout>,
    chain: Option<Chain>,
}

#[derive(Debug, Deserialize)]
struct Fanout {
    wall_s: f64,
    send_s: f64,
    tasks_per_s: f64,
}

#[derive(Debug, Deserialize)]
struct Chain {
    hops_ms: Vec<f64>,
    total_s: f64,
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

/// Runs the Celery fan-out and chain `ctx.repeat` times; "unavailable" when Celery cannot be installed.
pub async fn run(ctx: &Ctx) -> ScenarioOutcome {
    let venv = match ensure_venv(&ctx.workspace).await {
        Ok(venv) => venv,
        Err(reason) => {
            eprintln!("[celery] unavailable: {reason}");
            return ScenarioOutcome::unavailable("celery", format!("unavailable: {reason}"));
        }
    };
    repeat(ctx, "celery", async |_| once(ctx, &venv).await)
        .await
        .note(format!(
            "Celery {CELERY_VERSION}, {} workers × `--concurrency {} --pool prefork`, task_acks_late=True, \
             worker_prefetch_multiplier={} (the same prefetch as gust's workers), durable classic queue, \
             result backend db+postgresql+psycopg2 (fresh database)",
            ctx.workers, ctx.concurrency, ctx.prefetch_multiplier
        ))
        .note(format!(
            "fan-out: a group of {} noop tasks, send → last result stored (result table polled every 20 ms); \
             chain: {} immutable noop signatures, hop = start(n+1) − end(n) as recorded inside the tasks",
            ctx.fanout_tasks, ctx.chain_len
        ))
}

/// One repetition: fresh database and queue, N workers, the driver.
async fn once(ctx: &Ctx, venv: &Path) -> anyhow::Result<Vec<Measurement>> {
    let id = short_id();
    let queue = format!("bench-{id}.celery");
    let db_url = with_database(&ctx.db_base, &format!("gust_bench_celery_{id}"));
    let dir = std::env::temp_dir().join(format!("gust-bench-celery-{id}"));
    let ready = dir.join("ready");
    std::fs::create_dir_all(&ready)?;
    cleanup::track_database(&db_url);
    // Celery declares a durable queue and a direct exchange, both named after the queue.
    let broker_objects = [queue.clone()];
    cleanup::track_broker(&broker_objects, &broker_objects);
    db::ensure_database_exists(&db_url).await?;
    let app_dir = ctx.workspace.join("bench/celery");
    let env = vec![
        ("BENCH_BROKER_URL".to_string(), kombu_url(&ctx.amqp_url)),
        ("BENCH_BACKEND_URL".to_string(), backend_url(&db_url)),
        ("BENCH_QUEUE".to_string(), queue.clone()),
        ("BENCH_READY_DIR".to_string(), ready.display().to_string()),
        ("BENCH_PREFETCH_MULTIPLIER".to_string(), ctx.prefetch_multiplier.to_string()),
        ("PYTHONPATH".to_string(), app_dir.display().to_string()),
    ];
    let mut workers = Vec::new();
    let result = async {
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
                &queue,
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
                program: &venv.join("bin/celery"),
                args: args.iter().map(|s| s.to_string()).collect(),
                env: env.clone(),
                cwd: Some(&app_dir),
                log_dir: &dir,
                own_group: true,
            })?);
        }
        let deadline = Instant::now() + STARTUP_PATIENCE;
        while std::fs::read_dir(&ready)?.count() < ctx.workers {
            for worker in &mut workers {
                worker.ensure_running()?;
            }
            if Instant::now() > deadline {
                bail!("{} Celery workers were not ready within {STARTUP_PATIENCE:?}", ctx.workers);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let driver = Command::new(venv.join("bin/python"))
            .arg(app_dir.join("bench_celery.py"))
            .args(["--fanout", &ctx.fanout_tasks.to_string(), "--chain", &ctx.chain_len.to_string()])
            .args(["--timeout", &(DRIVER_TIMEOUT.as_secs() / 2).to_string()])
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(&app_dir)
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(dir.join("driver.log"))?)
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(DRIVER_TIMEOUT, driver).await.context("the Celery driver timed out")??;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout.lines().rev().find(|l| l.trim_start().starts_with('{')).with_context(|| {
            format!(
                "the Celery driver printed no JSON ({}); its log: {}",
                output.status,
                procs::tail(&dir.join("driver.log"), 10)
            )
        })?;
        let parsed: DriverOutput =
            serde_json::from_str(line).with_context(|| format!("parsing the driver's JSON {line}"))?;
        if let Some(error) = parsed.error {
            bail!("the Celery driver failed: {error}; its log: {}", procs::tail(&dir.join("driver.log"), 10));
        }
        if let Some(version) = &parsed.celery_version {
            anyhow::ensure!(version == CELERY_VERSION, "the driver ran Celery {version}, not {CELERY_VERSION}");
        }
        let (fanout, chain) = (parsed.fanout.context("no fan-out result")?, parsed.chain.context("no chain result")?);
        let mut out = vec![
            m("fanout_tasks_per_s", "fan-out throughput", "tasks/s", fanout.tasks_per_s),
            m("fanout_s", "fan-out wall time (send → last result)", "s", fanout.wall_s),
            m("fanout_send_s", "fan-out time to send the group", "s", fanout.send_s),
        ];
        let chain_run = ChainRun { hops_ms: chain.hops_ms, total_s: chain.total_s };
        for mut measurement in chain_run.measurements("chain_") {
            measurement.label = if measurement.key == "chain_run_s" {
                "chain run time (send → last task returned)".to_string()
            } else {
                format!("chain {}", measurement.label)
            };
            out.push(measurement);
        }
        Ok(out)
    }
    .await;
    let stops = workers.into_iter().map(|w| w.terminate(Duration::from_secs(20)));
    futures_util::future::join_all(stops).await;
    cleanup::delete_broker_objects(&ctx.amqp_url, &broker_objects, &broker_objects).await;
    cleanup::untrack_broker(&broker_objects, &broker_objects);
    match db::drop_database(&db_url).await {
        Ok(()) => cleanup::untrack_database(&db_url),
        Err(e) => eprintln!("warning: dropping the Celery result database: {e}"),
    }
    if result.is_ok() && !ctx.keep_logs {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result.map_err(|e| e.context(format!("Celery logs kept in {}", dir.display())))
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
    fn driver_output_parses() {
        let parsed: DriverOutput = serde_json::from_str(
            r#"{"celery_version": "5.7.0", "queue": "q", "fanout": {"n": 2, "wall_s": 1.0, "send_s": 0.1, "tasks_per_s": 2.0},
                "chain": {"n": 3, "hops_ms": [1.0, 2.0], "total_s": 0.5}}"#,
        )
        .unwrap();
        assert_eq!(parsed.fanout.unwrap().tasks_per_s, 2.0);
        assert_eq!(parsed.chain.unwrap().hops_ms, vec![1.0, 2.0]);
        let failed: DriverOutput = serde_json::from_str(r#"{"error": "boom"}"#).unwrap();
        assert_eq!(failed.error.as_deref(), Some("boom"));
    }
}
