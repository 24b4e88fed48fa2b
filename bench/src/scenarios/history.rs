//! History: does the scheduler's per-tick cost stay flat as finished work
//! piles up? Runs the chain on an (almost) empty database, then inserts a
//! large finished history for another DAG (10,000 successful runs × 100
//! successful task instances), `VACUUM ANALYZE`s, and runs the chain again
//! in the same stack. Reports both hop p50s and their ratio, and a sweep
//! proxy: the scheduler's hot read queries timed directly.

use std::time::Instant;

use anyhow::Context;

use super::{chain, m, Ctx, Measurement, ScenarioOutcome};
use crate::{
    dags::{self, Op},
    stack::GustStack,
    stats::median,
};

/// DAG id of the chain that is timed.
const CHAIN_DAG: &str = "bench_history_chain";
/// DAG id the history is inserted for (a real DAG file, never triggered).
const OLD_DAG: &str = "bench_history_old";
/// Finished runs inserted.
const RUNS: i64 = 10_000;
/// Finished task instances per inserted run.
const TASKS_PER_RUN: usize = 100;
/// Executions of each proxy query; the median counts.
const PROXY_SAMPLES: usize = 30;

/// The scheduler's read queries on its hot path and in every safety sweep
/// (copied from shared/src/db: live runs, the max_active_runs count, the
/// dispatch scan without its row locks, the zombie scan, one run's task
/// states). Their cost must not grow with finished history.
const PROXY_QUERIES: &[(&str, &str)] = &[
    ("live runs", "SELECT id FROM dag_runs WHERE state IN ('queued', 'running') ORDER BY id"),
    ("running runs of a DAG", "SELECT count(*) FROM dag_runs WHERE dag_id = 'bench_history_old' AND state = 'running'"),
    ("dispatch scan", "SELECT id FROM task_instances WHERE state = 'scheduled' ORDER BY run_pk LIMIT 500"),
    (
        "zombie scan",
        "SELECT id FROM task_instances WHERE state = 'running' AND last_heartbeat_at < now() - interval '60 seconds' \
         ORDER BY last_heartbeat_at LIMIT 100",
    ),
    (
        "task states of the latest chain run",
        "SELECT id, task_id, state FROM task_instances WHERE run_pk = \
         (SELECT max(id) FROM dag_runs WHERE dag_id = 'bench_history_chain')",
    ),
];

/// Runs the chain `ctx.repeat` times before and after inserting history.
pub async fn run(ctx: &Ctx) -> ScenarioOutcome {
    let n = ctx.chain_len;
    let files = vec![
        (format!("{CHAIN_DAG}.yaml"), dags::chain(CHAIN_DAG, n, Op::Noop)),
        (format!("{OLD_DAG}.yaml"), dags::fanout(OLD_DAG, TASKS_PER_RUN, Op::Noop)),
    ];
    eprintln!(
        "[history] chain of {n} ×{} on an empty database, then {} task instances of history, then the chain again",
        ctx.repeat,
        RUNS * TASKS_PER_RUN as i64
    );
    let result = GustStack::with(ctx, &files, async |stack| measure(ctx, stack, n).await).await;
    let repetitions = match result {
        Ok(repetitions) => repetitions.into_iter().map(Ok).collect(),
        Err(e) => {
            eprintln!("[history]   FAILED: {e:#}");
            vec![Err(format!("{e:#}"))]
        }
    };
    ScenarioOutcome::from_repetitions("history", repetitions)
        .note(format!(
            "chain of {n} noop tasks before and after inserting {RUNS} finished runs × {TASKS_PER_RUN} finished task instances \
             of another DAG, then VACUUM ANALYZE; ratio = with history / empty (flat ≈ 1)"
        ))
        .note(format!(
            "sweep proxy = sum of the medians ({PROXY_SAMPLES} executions each) of the scheduler's read queries: {}",
            PROXY_QUERIES.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
        ))
}

async fn measure(ctx: &Ctx, stack: &mut GustStack, n: usize) -> anyhow::Result<Vec<Vec<Measurement>>> {
    stack.wait_for_dag(OLD_DAG).await?;
    let mut empty = Vec::new();
    for i in 0..ctx.repeat {
        let run = chain::measure(stack, CHAIN_DAG, n)
            .await
            .with_context(|| format!("chain run {} on the empty database", i + 1))?;
        eprintln!(
            "[history]   empty database, chain {}: hop p50 {:.2} ms",
            i + 1,
            median(&run.hops_ms).unwrap_or(f64::NAN)
        );
        empty.push((run, sweep_proxy_ms(stack).await?));
    }
    let inserted = Instant::now();
    insert_history(stack).await?;
    let insert_s = inserted.elapsed().as_secs_f64();
    eprintln!("[history]   inserted and analysed the history in {insert_s:.1} s");
    let mut full = Vec::new();
    for i in 0..ctx.repeat {
        let run =
            chain::measure(stack, CHAIN_DAG, n).await.with_context(|| format!("chain run {} with history", i + 1))?;
        eprintln!(
            "[history]   with history, chain {}: hop p50 {:.2} ms",
            i + 1,
            median(&run.hops_ms).unwrap_or(f64::NAN)
        );
        full.push((run, sweep_proxy_ms(stack).await?));
    }
    let history_tis = RUNS as f64 * TASKS_PER_RUN as f64;
    Ok(empty
        .into_iter()
        .zip(full)
        .map(|((before, sweep_before), (after, sweep_after))| {
            let p50_before = median(&before.hops_ms).unwrap_or(f64::NAN);
            let p50_after = median(&after.hops_ms).unwrap_or(f64::NAN);
            vec![
                m("hop_p50_empty_ms", "chain hop p50, empty database", "ms", p50_before),
                m("hop_p50_history_ms", "chain hop p50, with history", "ms", p50_after),
                m("hop_p50_ratio", "hop p50 ratio (history / empty)", "×", p50_after / p50_before),
                m("sweep_proxy_empty_ms", "sweep proxy, empty database", "ms", sweep_before),
                m("sweep_proxy_history_ms", "sweep proxy, with history", "ms", sweep_after),
                m("sweep_proxy_ratio", "sweep proxy ratio (history / empty)", "×", sweep_after / sweep_before),
                m("history_task_instances", "finished task instances inserted", "", history_tis),
                m("insert_s", "time to insert + VACUUM ANALYZE the history", "s", insert_s),
            ]
        })
        .collect())
}

/// Inserts `RUNS` finished runs of `OLD_DAG` with `TASKS_PER_RUN` successful task instances each.
async fn insert_history(stack: &GustStack) -> anyhow::Result<()> {
    let version: i64 = stack
        .db
        .query_one(
            "SELECT coalesce(latest_version_id, (SELECT max(id) FROM dag_versions WHERE dag_id = $1)) FROM dags WHERE dag_id = $1",
            &[&OLD_DAG],
        )
        .await
        .context("reading the version of the history DAG")?
        .try_get(0)
        .context("the history DAG has no version")?;
    let last_task = i32::try_from(TASKS_PER_RUN - 1)?;
    stack
        .db
        .execute(
            "INSERT INTO dag_runs (dag_id, run_id, run_type, state, dag_version_id, run_after, queued_at, start_date, end_date, triggered_by) \
             SELECT $1, 'history__' || g, 'manual', 'success', $2, t, t, t + interval '1 second', t + interval '1 minute', 'rest_api' \
             FROM generate_series(1, $3::bigint) g, LATERAL (SELECT now() - interval '30 days' + g * interval '1 minute' AS t) times",
            &[&OLD_DAG, &version, &RUNS],
        )
        .await
        .context("inserting finished runs")?;
    stack
        .db
        .execute(
            "INSERT INTO task_instances (run_pk, dag_id, run_id, task_id, operator, queue, state, try_number, max_tries, \
                 hostname, queued_at, start_date, end_date, updated_at) \
             SELECT r.id, r.dag_id, r.run_id, 't' || lpad(i::text, 3, '0'), 'noop', 'default', 'success', 1, 0, \
                 'bench-history', r.start_date, r.start_date, r.end_date, r.end_date \
             FROM dag_runs r CROSS JOIN generate_series(0, $2::int) i WHERE r.dag_id = $1",
            &[&OLD_DAG, &last_task],
        )
        .await
        .context("inserting finished task instances")?;
    stack.db.batch_execute("VACUUM ANALYZE").await.context("VACUUM ANALYZE")?;
    Ok(())
}

/// Sum over [`PROXY_QUERIES`] of each query's median time, in ms.
async fn sweep_proxy_ms(stack: &GustStack) -> anyhow::Result<f64> {
    let mut total = 0.0;
    for (name, sql) in PROXY_QUERIES {
        let statement = stack.db.prepare(sql).await.with_context(|| format!("preparing the {name} query"))?;
        let mut samples = Vec::with_capacity(PROXY_SAMPLES);
        for _ in 0..PROXY_SAMPLES {
            let started = Instant::now();
            stack.db.query(&statement, &[]).await.with_context(|| format!("running the {name} query"))?;
            samples.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        total += median(&samples).unwrap_or(f64::NAN);
    }
    Ok(total)
}
