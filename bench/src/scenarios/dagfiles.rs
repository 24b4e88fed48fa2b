//! DAG files: how the scheduler copes with a big DAG folder (Airflow's DAG
//! parsing is a top complaint: apache/airflow#11494, #41806). For each count
//! (1,000 and 10,000 by default, `--dag-files` to change) a stack starts with
//! that many small generated DAG files; measured are the time from the
//! scheduler's start until every DAG is stored, then, with nothing changed,
//! the scheduler's CPU and wall time per rescan over [`RESCANS`] rescans
//! (counted on its `/metrics`; sweeps are switched off so rescans are the only
//! work). Not part of `all`: the 10,000-file scan takes minutes.

use std::{
    net::TcpListener,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, Context};

use super::{m, repeat, Ctx, Measurement, ScenarioOutcome};
use crate::{
    dags::{self, Op},
    resources::{self, mib},
    stack::GustStack,
};

/// Rescans the CPU per rescan is averaged over.
const RESCANS: u64 = 10;
/// Interval between rescans (the stack's own setting, stated again here).
const RESCAN_INTERVAL: &str = "1s";
/// Tasks in each generated DAG (a chain).
const TASKS_PER_DAG: usize = 5;
/// Longest the first scan of the folder may take.
const SCAN_TIMEOUT: Duration = Duration::from_secs(900);
/// Prefix of the generated DAG ids.
const DAG_PREFIX: &str = "bench_dagfile_";

/// Scans each folder size `ctx.repeat` times.
pub async fn run(ctx: &Ctx) -> ScenarioOutcome {
    let counts = ctx.dag_file_counts.clone();
    repeat(ctx, "dagfiles", async |_| {
        let mut out = Vec::new();
        for &files in &counts {
            out.extend(folder(ctx, files).await.with_context(|| format!("{files} DAG files"))?);
        }
        Ok(out)
    })
    .await
    .note(format!(
        "DAG files of {TASKS_PER_DAG} noop tasks in a line; full scan = scheduler start → last DAG version stored; \
         per rescan = scheduler CPU (utime+stime) and main-loop time over {RESCANS} rescans at {RESCAN_INTERVAL} with nothing changed, \
         the safety sweep switched off; keys end in the file count"
    ))
}

/// The generated folder of `files` DAG files.
fn dag_files(files: usize) -> Vec<(String, String)> {
    (0..files)
        .map(|i| {
            let dag_id = format!("{DAG_PREFIX}{}", dags::task_id(i, files));
            (format!("{dag_id}.yaml"), dags::chain(&dag_id, TASKS_PER_DAG, Op::Noop))
        })
        .collect()
}

/// One stack with `files` DAG files: the first scan, then the idle rescans.
async fn folder(ctx: &Ctx, files: usize) -> anyhow::Result<Vec<Measurement>> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let stack_ctx = Ctx {
        workers: 1,
        scheduler_env: vec![
            ("GUST__METRICS__BIND".into(), format!("127.0.0.1:{port}")),
            ("GUST__SCHEDULER__RESCAN_INTERVAL".into(), RESCAN_INTERVAL.into()),
            ("GUST__SCHEDULER__SAFETY_INTERVAL".into(), "24h".into()),
        ],
        ..ctx.clone()
    };
    let metrics_url = format!("http://127.0.0.1:{port}/metrics");
    let generated = dag_files(files);
    eprintln!("[dagfiles]   {files} files written; waiting for the first scan");
    GustStack::with(&stack_ctx, &generated, async |stack| {
        let spawned_at = SystemTime::now() - stack.workers_started.elapsed();
        let stored_at = wait_until_stored(stack, files).await?;
        let full_scan_s = stored_at - spawned_at.duration_since(UNIX_EPOCH)?.as_secs_f64();
        eprintln!("[dagfiles]   {files} files stored {full_scan_s:.1} s after the scheduler started");

        let scheduler = stack.scheduler_pid();
        let http = reqwest::Client::new();
        let first = LoopStats::read(&http, &metrics_url).await?;
        wait_for_rounds(stack, &http, &metrics_url, first.rounds + 1).await?;
        let before = LoopStats::read(&http, &metrics_url).await?;
        let cpu_before = resources::cpu_seconds(scheduler, ctx.clk_tck)?;
        let after = wait_for_rounds(stack, &http, &metrics_url, before.rounds + RESCANS).await?;
        let cpu = resources::cpu_seconds(scheduler, ctx.clk_tck)? - cpu_before;
        let rounds = (after.rounds - before.rounds) as f64;
        let rss = resources::memory(scheduler)?;
        let parse_ms = 1000.0 * after.parse_sum_s / after.parsed as f64;
        Ok(vec![
            m(
                &format!("full_scan_s_{files}"),
                &format!("{files} files: scheduler start → all stored"),
                "s",
                full_scan_s,
            ),
            m(
                &format!("rescan_cpu_ms_{files}"),
                &format!("{files} files: scheduler CPU per rescan, nothing changed"),
                "ms",
                1000.0 * cpu / rounds,
            ),
            m(
                &format!("rescan_wall_ms_{files}"),
                &format!("{files} files: time per rescan, nothing changed"),
                "ms",
                1000.0 * (after.loop_sum_s - before.loop_sum_s) / rounds,
            ),
            m(&format!("parse_ms_per_file_{files}"), &format!("{files} files: read + parse per file"), "ms", parse_ms),
            m(
                &format!("scheduler_rss_mib_{files}"),
                &format!("{files} files: scheduler RSS after"),
                "MiB",
                mib(rss.rss_kib),
            ),
        ])
    })
    .await
}

/// Waits until `files` generated DAGs have a version; returns when the last was stored (epoch seconds, database clock).
async fn wait_until_stored(stack: &mut GustStack, files: usize) -> anyhow::Result<f64> {
    let deadline = Instant::now() + SCAN_TIMEOUT;
    let statement = stack
        .db
        .prepare(
            "SELECT count(DISTINCT dag_id), extract(epoch FROM max(created_at))::float8 FROM dag_versions \
             WHERE dag_id LIKE 'bench\\_dagfile\\_%'",
        )
        .await?;
    loop {
        let row = stack.db.query_one(&statement, &[]).await?;
        let (stored, last): (i64, Option<f64>) = (row.get(0), row.get(1));
        if stored as usize >= files {
            return last.context("stored DAGs without a creation time");
        }
        stack.ensure_running()?;
        if Instant::now() > deadline {
            bail!("only {stored} of {files} DAG files were stored within {SCAN_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls the scheduler's `/metrics` until its main loop has run `rounds` rounds.
async fn wait_for_rounds(
    stack: &mut GustStack,
    http: &reqwest::Client,
    url: &str,
    rounds: u64,
) -> anyhow::Result<LoopStats> {
    let deadline = Instant::now() + SCAN_TIMEOUT;
    loop {
        let stats = LoopStats::read(http, url).await?;
        if stats.rounds >= rounds {
            return Ok(stats);
        }
        stack.ensure_running()?;
        if Instant::now() > deadline {
            bail!("the scheduler's main loop ran {} of {rounds} rounds within {SCAN_TIMEOUT:?}", stats.rounds);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What the scheduler's `/metrics` says about its main loop and DAG parsing.
#[derive(Debug, Clone, Copy, PartialEq)]
struct LoopStats {
    /// Rounds of the main loop (with sweeps off and nothing running: rescans).
    rounds: u64,
    /// Seconds spent in those rounds.
    loop_sum_s: f64,
    /// DAG files read and parsed.
    parsed: u64,
    /// Seconds spent reading and parsing them.
    parse_sum_s: f64,
}

impl LoopStats {
    async fn read(http: &reqwest::Client, url: &str) -> anyhow::Result<LoopStats> {
        let text = http
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .with_context(|| format!("reading the scheduler's metrics at {url}"))?
            .text()
            .await?;
        LoopStats::parse(&text).with_context(|| format!("{url} has no gust_scheduler_loop_duration_seconds histogram"))
    }

    fn parse(text: &str) -> Option<LoopStats> {
        let value = |name: &str| -> Option<f64> {
            text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        };
        Some(LoopStats {
            rounds: value("gust_scheduler_loop_duration_seconds_count")? as u64,
            loop_sum_s: value("gust_scheduler_loop_duration_seconds_sum")?,
            parsed: value("gust_dag_parse_duration_seconds_count").unwrap_or(0.0) as u64,
            parse_sum_s: value("gust_dag_parse_duration_seconds_sum").unwrap_or(0.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_and_parse_histograms_are_read_from_the_exposition() {
        let text = "# TYPE gust_scheduler_loop_duration_seconds histogram\n\
                    gust_scheduler_loop_duration_seconds_sum 1.5\n\
                    gust_scheduler_loop_duration_seconds_count 12\n\
                    gust_scheduler_loop_duration_seconds_bucket{le=\"0.005\"} 3\n\
                    gust_dag_parse_duration_seconds_sum 0.25\n\
                    gust_dag_parse_duration_seconds_count 1000\n";
        assert_eq!(
            LoopStats::parse(text),
            Some(LoopStats { rounds: 12, loop_sum_s: 1.5, parsed: 1000, parse_sum_s: 0.25 })
        );
        assert_eq!(LoopStats::parse("gust_dag_files 3\n"), None);
    }

    #[test]
    fn generated_files_hold_distinct_dags_sorted_by_name() {
        let files = dag_files(3);
        assert_eq!(files[0].0, "bench_dagfile_t000.yaml");
        assert!(files[2].1.starts_with("dag_id: bench_dagfile_t002\n"));
        assert_eq!(files[1].1.matches("  - id: ").count(), TASKS_PER_DAG);
    }
}
