//! Runs: many small runs (`a → 8 parallel → z`, noop) triggered through
//! the HTTP API by concurrent clients. Measures runs/s from the first
//! trigger to the last run finished, and the latency of the POSTs.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, Context};

use super::{m, repeat, Ctx, Measurement, ScenarioOutcome};
use crate::{
    dags, resources,
    stack::{self, GustStack, POLL},
    stats::percentile,
};

/// DAG id of the runs scenario.
const DAG_ID: &str = "bench_runs";
/// Parallel tasks between `a` and `z`.
const WIDTH: usize = 8;
/// Longest all runs may take before the repetition counts as failed.
const TIMEOUT: Duration = Duration::from_secs(600);
/// Times a client re-sends a POST answered 409 (two runs got the same generated id).
const CONFLICT_RETRIES: usize = 5;

/// Triggers `ctx.runs` runs with `ctx.clients` clients, `ctx.repeat` times.
pub async fn run(ctx: &Ctx) -> ScenarioOutcome {
    let files = vec![(format!("{DAG_ID}.yaml"), dags::diamond(DAG_ID, WIDTH, None))];
    repeat(ctx, "runs", async |_| GustStack::with(ctx, &files, async |stack| measure(ctx, stack).await).await)
        .await
        .note(format!(
            "{} runs of a→{WIDTH}×noop→z (default max_active_runs = 16) by {} concurrent HTTP clients; \
             runs/s = runs / (last end_date − first queued_at)",
            ctx.runs, ctx.clients
        ))
}

/// What the clients saw.
struct Triggered {
    latencies_ms: Vec<f64>,
    conflicts: usize,
    wall: Duration,
}

async fn trigger_all(ctx: &Ctx, api: &str, token: &str) -> anyhow::Result<Triggered> {
    let next = Arc::new(AtomicUsize::new(0));
    let conflicts = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..ctx.clients {
        let (next, conflicts, api, total) = (next.clone(), conflicts.clone(), api.to_string(), ctx.runs);
        let token = token.to_string();
        clients.spawn(async move {
            let http = stack::authed_client(&token)?;
            let mut latencies = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let mut attempt = 0;
                loop {
                    match stack::trigger(&http, &api, DAG_ID).await {
                        Ok((_, latency)) => {
                            latencies.push(latency.as_secs_f64() * 1000.0);
                            break;
                        }
                        Err(e) if e.to_string().contains("409") && attempt < CONFLICT_RETRIES => {
                            conflicts.fetch_add(1, Ordering::Relaxed);
                            attempt += 1;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            anyhow::Ok(latencies)
        });
    }
    let mut latencies_ms = Vec::new();
    while let Some(joined) = clients.join_next().await {
        latencies_ms.extend(joined.context("an HTTP client task panicked")??);
    }
    Ok(Triggered { latencies_ms, conflicts: conflicts.load(Ordering::Relaxed), wall: started.elapsed() })
}

async fn measure(ctx: &Ctx, stack: &mut GustStack) -> anyhow::Result<Vec<Measurement>> {
    stack.wait_for_dag(DAG_ID).await?;
    let scheduler = stack.scheduler_pid();
    let cpu_before = resources::cpu_seconds(scheduler, ctx.clk_tck)?;
    let triggered = trigger_all(ctx, &stack.api, &stack.token).await?;
    let deadline = Instant::now() + TIMEOUT;
    let count = stack
        .db
        .prepare(
            "SELECT count(*) FILTER (WHERE state IN ('success', 'failed')), count(*) FILTER (WHERE state = 'failed'), count(*) \
             FROM dag_runs WHERE dag_id = $1",
        )
        .await?;
    loop {
        let row = stack.db.query_one(&count, &[&DAG_ID]).await?;
        let (finished, failed, total): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
        if failed > 0 {
            bail!("{failed} of {total} runs failed");
        }
        if finished >= ctx.runs as i64 {
            break;
        }
        stack.ensure_running()?;
        if Instant::now() > deadline {
            bail!("only {finished} of {} runs finished within {TIMEOUT:?}", ctx.runs);
        }
        tokio::time::sleep(POLL).await;
    }
    let scheduler_cpu = resources::cpu_seconds(scheduler, ctx.clk_tck)? - cpu_before;
    let span: f64 = stack
        .db
        .query_one(
            "SELECT extract(epoch FROM max(end_date) - min(queued_at))::float8 FROM dag_runs WHERE dag_id = $1",
            &[&DAG_ID],
        )
        .await?
        .get(0);
    let waits: Vec<f64> = stack
        .db
        .query(
            "SELECT extract(epoch FROM start_date - queued_at)::float8 * 1000 FROM dag_runs WHERE dag_id = $1",
            &[&DAG_ID],
        )
        .await?
        .iter()
        .filter_map(|r| r.get::<_, Option<f64>>(0))
        .collect();
    let wait = |q| percentile(&waits, q).unwrap_or(f64::NAN);
    let p = |q| percentile(&triggered.latencies_ms, q).unwrap_or(f64::NAN);
    Ok(vec![
        m("runs_per_s", "runs finished per second", "runs/s", ctx.runs as f64 / span),
        m("span_s", "first trigger → last run finished", "s", span),
        m("api_p50_ms", "trigger POST latency p50", "ms", p(50.0)),
        m("api_p99_ms", "trigger POST latency p99", "ms", p(99.0)),
        m("start_wait_p50_ms", "run queued → started p50", "ms", wait(50.0)),
        m("start_wait_max_ms", "run queued → started max", "ms", wait(100.0)),
        m("scheduler_cpu_s", "scheduler CPU, first trigger → last run finished", "s", scheduler_cpu),
        m(
            "trigger_rate_per_s",
            "POSTs per second while triggering",
            "req/s",
            ctx.runs as f64 / triggered.wall.as_secs_f64(),
        ),
        m("trigger_conflicts", "POSTs answered 409 and re-sent", "", triggered.conflicts as f64),
    ])
}
