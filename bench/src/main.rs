//! `gust-bench`: the benchmark harness of gust.
//!
//! Runs the release binaries (`target/release/gust-{scheduler,worker,webapi}`)
//! as child processes against the local PostgreSQL and RabbitMQ, each
//! measurement in a fresh database and queue namespace; measures the broker
//! and database floors and Celery on the same machine; prints a table and
//! writes the results as JSON to `bench/results/`.

mod celery;
mod cleanup;
mod dags;
mod machine;
mod procs;
mod report;
mod resources;
mod scenarios;
mod stack;
mod stats;
mod trend;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::{
    report::{Config, Report},
    scenarios::{Ctx, ScenarioOutcome},
    stack::{pg_connect, Binaries},
};

/// Benchmarks gust: fan-out, chains, many runs, bash tasks, the
/// RabbitMQ/PostgreSQL floors, Celery, and scheduler cost with history.
///
/// Needs PostgreSQL (GUST__DATABASE__URL, default postgres://postgres@127.0.0.1:5432)
/// and RabbitMQ (GUST__AMQP__URL, default amqp://guest:guest@127.0.0.1:5672/%2f),
/// and the release binaries: `cargo build --release -p gust-scheduler -p gust-worker -p gust-webapi`.
#[derive(Debug, Parser)]
#[command(name = "gust-bench", version)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
    /// Repetitions of each scenario; the table shows their median, min and max.
    #[arg(long, default_value_t = 3, global = true, value_parser = clap::value_parser!(u64).range(1..))]
    repeat: u64,
    /// gust workers per stack (and Celery workers).
    #[arg(long, default_value_t = 2, global = true, value_parser = clap::value_parser!(u64).range(1..))]
    workers: u64,
    /// Tasks each worker runs at once (GUST__WORKER__CONCURRENCY; Celery --concurrency).
    #[arg(long, default_value_t = 16, global = true, value_parser = clap::value_parser!(u64).range(1..))]
    concurrency: u64,
    /// Deliveries reserved per concurrency slot (GUST__WORKER__PREFETCH_MULTIPLIER; Celery worker_prefetch_multiplier).
    #[arg(long, default_value_t = 1, global = true, value_parser = clap::value_parser!(u64).range(1..=64))]
    prefetch_multiplier: u64,
    /// Tasks in the fan-outs (default 10,000 noop, 2,000 bash, 100,000 in big; Celery uses the noop size), to scale down for quick runs.
    #[arg(long, global = true, value_parser = clap::value_parser!(u64).range(1..))]
    tasks: Option<u64>,
    /// Runs triggered in the runs scenario.
    #[arg(long, default_value_t = 1000, global = true, value_parser = clap::value_parser!(u64).range(1..))]
    runs: u64,
    /// DAG folder sizes of the dagfiles scenario, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1000, 10000], global = true, value_parser = clap::value_parser!(u64).range(1..))]
    dag_files: Vec<u64>,
    /// Seconds the apiload clients keep sending requests.
    #[arg(long, default_value_t = 30, global = true, value_parser = clap::value_parser!(u64).range(1..))]
    load_seconds: u64,
    /// Minutes the soak runs (its first 2 are a warm-up its trends leave out).
    #[arg(long, default_value_t = 20, global = true, value_parser = clap::value_parser!(u64).range(1..=24 * 60))]
    minutes: u64,
    /// Minutes of history the soak's scheduler keeps (GUST__RETENTION__MAX_AGE, cleaning every minute); default: retention off, as gust ships.
    #[arg(long, global = true, value_parser = clap::value_parser!(u64).range(1..))]
    retention_minutes: Option<u64>,
    /// Skip Celery in `all`.
    #[arg(long, global = true)]
    no_celery: bool,
    /// Where to write the JSON (default bench/results/<date>.json for `all`, <date>-<scenario>.json otherwise).
    #[arg(long, global = true)]
    out: Option<PathBuf>,
    /// Keep every stack's temporary folder (DAGs, process logs), not only those of failed runs.
    #[arg(long, global = true)]
    keep_logs: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
enum Scenario {
    /// Every scenario below but the scale curves (raw, fanout + resources and celery interleaved repetition by repetition, chain, mixed, runs, bash, history, ui).
    All,
    /// RabbitMQ and PostgreSQL floors without gust.
    Raw,
    /// One run of 10,000 independent noop tasks: tasks/s, first task start, memory and CPU.
    Fanout,
    /// 200 noop tasks in a line: per-hop latency.
    Chain,
    /// On one stack: the chain, ANALYZE, the fan-out, the chain again: no slowdown from what ran before.
    Mixed,
    /// 1,000 runs of a→8→z triggered over HTTP by 8 clients: runs/s, API latency.
    Runs,
    /// Fan-out of 2,000 and chain of 100 `bash -c true` tasks.
    Bash,
    /// Chain hop p50 and a sweep proxy on an empty database and with 1,000,000 finished task instances.
    History,
    /// The web UI: the grid of 25 runs × 1,000 tasks and a 10,000-line log page, server time and bytes.
    Ui,
    /// Fan-out throughput with 1, 2, 4 and 8 workers, same total concurrency and 16 per worker (not in `all`).
    Scale,
    /// One run of 100,000 noop tasks: run time, tasks/s, scheduler and worker memory, second half vs first (not in `all`).
    Big,
    /// 1,000 and 10,000 DAG files: time to store them all, scheduler CPU per rescan with nothing changed (not in `all`).
    Dagfiles,
    /// 64 HTTP clients on the list endpoints for 30 s: requests/s, p50/p99, count of 5xx (not in `all`).
    Apiload,
    /// 20 minutes (--minutes) of scheduled DAGs, 200-task mapped fan-outs, retries and failures on one stack: memory, connections, table sizes and queue depths every 10 s, growth per hour (not in `all`; --repeat is ignored).
    Soak,
    /// The same fan-out and chain with Celery 5.7.0 (installed into bench/.venv).
    Celery,
    /// Drop leftover gust_bench_* databases and bench-* queues of killed runs (not while a benchmark runs).
    Cleanup,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::All => "all",
            Scenario::Raw => "raw",
            Scenario::Fanout => "fanout",
            Scenario::Chain => "chain",
            Scenario::Mixed => "mixed",
            Scenario::Runs => "runs",
            Scenario::Bash => "bash",
            Scenario::History => "history",
            Scenario::Ui => "ui",
            Scenario::Scale => "scale",
            Scenario::Big => "big",
            Scenario::Dagfiles => "dagfiles",
            Scenario::Apiload => "apiload",
            Scenario::Soak => "soak",
            Scenario::Celery => "celery",
            Scenario::Cleanup => "cleanup",
        }
    }

    fn needs_gust(self) -> bool {
        !matches!(self, Scenario::Raw | Scenario::Celery | Scenario::Cleanup)
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("bench/ is inside the workspace").to_path_buf()
}

/// RabbitMQ URL when GUST__AMQP__URL is not set.
const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_string())
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let amqp_url = env_or("GUST__AMQP__URL", DEFAULT_AMQP_URL);
    let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(signal) => signal,
        Err(e) => {
            eprintln!("error: cannot listen for SIGTERM: {e}");
            std::process::exit(2);
        }
    };
    let interrupted = |signal: &str| {
        eprintln!(
            "\n{signal}: killing the child processes, dropping the databases and queues of this run \
             (process logs stay in {}/gust-bench-*)",
            std::env::temp_dir().display()
        );
    };
    let code = tokio::select! {
        result = run(&cli) => match result {
            Ok(true) => 0,
            Ok(false) => 1,
            Err(e) => {
                eprintln!("error: {e:#}");
                2
            }
        },
        _ = tokio::signal::ctrl_c() => {
            interrupted("interrupted");
            130
        }
        _ = terminate.recv() => {
            interrupted("SIGTERM");
            143
        }
    };
    if code >= 128 {
        cleanup::everything(&amqp_url).await;
    }
    std::process::exit(code);
}

/// Runs what the command line asks; `Ok(false)` when a scenario failed.
async fn run(cli: &Cli) -> anyhow::Result<bool> {
    let workspace = workspace_root();
    let db_base =
        stack::with_database(&env_or("GUST__DATABASE__URL", "postgres://postgres@127.0.0.1:5432/postgres"), "postgres");
    let amqp_url = env_or("GUST__AMQP__URL", DEFAULT_AMQP_URL);
    check_services(&db_base, &amqp_url).await?;
    if cli.scenario == Scenario::Cleanup {
        return cleanup::leftovers(&db_base, &amqp_url).await.map(|()| true);
    }

    let (bins, mut warnings) = match Binaries::locate(&workspace) {
        Ok(found) => found,
        Err(e) if cli.scenario.needs_gust() => return Err(e),
        Err(_) => (Binaries { scheduler: PathBuf::new(), worker: PathBuf::new(), webapi: PathBuf::new() }, Vec::new()),
    };
    for warning in &warnings {
        eprintln!("WARNING: {warning}");
    }
    let ctx = Ctx {
        repeat: cli.repeat as usize,
        workers: cli.workers as usize,
        concurrency: cli.concurrency as usize,
        prefetch_multiplier: cli.prefetch_multiplier as usize,
        fanout_tasks: cli.tasks.map_or(10_000, |t| t as usize),
        bash_fanout_tasks: cli.tasks.map_or(2_000, |t| t as usize),
        chain_len: 200,
        bash_chain_len: 100,
        runs: cli.runs as usize,
        clients: 8,
        big_tasks: cli.tasks.map_or(100_000, |t| t as usize),
        dag_file_counts: cli.dag_files.iter().map(|&n| n as usize).collect(),
        load_seconds: cli.load_seconds,
        soak_minutes: cli.minutes,
        soak_retention_minutes: cli.retention_minutes,
        scheduler_env: Vec::new(),
        keep_logs: cli.keep_logs,
        bins,
        db_base: db_base.clone(),
        amqp_url,
        workspace: workspace.clone(),
        clk_tck: resources::clk_tck().await,
    };
    let machine = machine::describe(&workspace, &db_base).await;
    if machine.cores.is_some_and(|cores| cores < ctx.workers + 2) {
        warnings.push(format!(
            "{} cores for {} workers, a scheduler, a webapi, PostgreSQL and RabbitMQ: every number is CPU-bound on this machine",
            machine.cores.unwrap_or(0),
            ctx.workers
        ));
    }

    let scenarios = run_scenarios(cli, &ctx).await;
    let config = Config {
        repeat: ctx.repeat,
        workers: ctx.workers,
        concurrency: ctx.concurrency,
        prefetch_multiplier: ctx.prefetch_multiplier,
        fanout_tasks: ctx.fanout_tasks,
        bash_fanout_tasks: ctx.bash_fanout_tasks,
        chain_len: ctx.chain_len,
        bash_chain_len: ctx.bash_chain_len,
        runs: ctx.runs,
        clients: ctx.clients,
        inherited_gust_env: std::env::vars().filter(|(k, _)| k.starts_with("GUST__")).map(|(k, _)| k).collect(),
    };
    let report = Report::new(std::env::args().collect(), config, machine, warnings, scenarios);
    println!("{}", report.table());
    let path = cli.out.clone().unwrap_or_else(|| {
        let date = chrono::Local::now().format("%Y-%m-%d");
        let name = match cli.scenario {
            Scenario::All => format!("{date}.json"),
            other => format!("{date}-{}.json", other.name()),
        };
        workspace.join("bench/results").join(name)
    });
    report.write_json(&path)?;
    println!("results written to {}", path.display());
    Ok(report.all_ok())
}

async fn run_scenarios(cli: &Cli, ctx: &Ctx) -> Vec<ScenarioOutcome> {
    use scenarios::{apiload, bash, big, chain, dagfiles, fanout, history, mixed, raw, runs, scale, soak, ui};
    let mut out = Vec::new();
    let all = cli.scenario == Scenario::All;
    let wants = |s: Scenario| all || cli.scenario == s;
    if wants(Scenario::Raw) {
        out.push(raw::run(ctx).await);
    }
    let interleave = all && !cli.no_celery;
    let mut celery_outcome = None;
    if interleave {
        let (gust, celery) = fanout_and_celery_interleaved(ctx).await;
        out.extend(gust);
        celery_outcome = celery;
    } else if wants(Scenario::Fanout) {
        out.extend(fanout::run(ctx).await);
    }
    if wants(Scenario::Chain) {
        out.push(chain::run(ctx).await);
    }
    if wants(Scenario::Mixed) {
        out.push(mixed::run(ctx).await);
    }
    if wants(Scenario::Runs) {
        out.push(runs::run(ctx).await);
    }
    if wants(Scenario::Bash) {
        out.push(bash::run(ctx).await);
    }
    if wants(Scenario::History) {
        out.push(history::run(ctx).await);
    }
    if wants(Scenario::Ui) {
        out.push(ui::run(ctx).await);
    }
    let alone = |s: Scenario| cli.scenario == s;
    if alone(Scenario::Scale) {
        out.push(scale::run(ctx).await);
    }
    if alone(Scenario::Big) {
        out.push(big::run(ctx).await);
    }
    if alone(Scenario::Dagfiles) {
        out.push(dagfiles::run(ctx).await);
    }
    if alone(Scenario::Apiload) {
        out.push(apiload::run(ctx).await);
    }
    if alone(Scenario::Soak) {
        out.push(soak::run(ctx).await);
    }
    if cli.scenario == Scenario::Celery || interleave {
        out.push(match celery_outcome {
            Some(outcome) => outcome,
            None => celery::run(ctx).await,
        });
    }
    out
}

/// gust's fan-out and Celery one repetition at a time (gust's i-th, then Celery's i-th), so that
/// a change in the shared machine's load falls on both; returns the fanout and resources outcomes and Celery's.
async fn fanout_and_celery_interleaved(ctx: &Ctx) -> (Vec<ScenarioOutcome>, Option<ScenarioOutcome>) {
    let once = Ctx { repeat: 1, ..ctx.clone() };
    let (mut fanouts, mut resources, mut celeries) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..ctx.repeat {
        eprintln!("[all] fan-out and Celery interleaved, round {}/{}", i + 1, ctx.repeat);
        let mut gust = scenarios::fanout::run(&once).await.into_iter();
        fanouts.extend(gust.next());
        resources.extend(gust.next());
        let celery = celery::run(&once).await;
        let unavailable = celery.status == scenarios::Status::Unavailable;
        celeries.push(celery);
        if unavailable {
            break;
        }
    }
    let gust = [fanouts, resources].into_iter().filter_map(ScenarioOutcome::join).collect();
    (gust, ScenarioOutcome::join(celeries))
}

/// Fails early, with how to fix it, when PostgreSQL or RabbitMQ is not reachable.
async fn check_services(db_base: &str, amqp_url: &str) -> anyhow::Result<()> {
    pg_connect(db_base).await.context(
        "PostgreSQL is needed: start it (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) \
         or set GUST__DATABASE__URL",
    )?;
    let connection = gust_shared::amqp::connect(amqp_url, "gust-bench-check")
        .await
        .context("RabbitMQ is needed: start it (rabbitmq-server -detached) or set GUST__AMQP__URL")?;
    let _ = connection.close(200, "done".into()).await;
    Ok(())
}
