//! Big: one run of 100,000 independent noop tasks (`--tasks` scales it
//! down). Measures what the fanout scenario measures, with the scheduler's
//! and worker-0's memory sampled every 100 ms, and compares the throughput of
//! the run's second half of completions with its first: a pass over all task
//! instances per step would make the second half slower, flat is ≈ 1. Not
//! part of `all`: one run takes minutes.

use anyhow::Context;

use super::{fanout, m, repeat, Ctx, Measurement, ScenarioOutcome};
use crate::{
    dags::{self, Op},
    stack::GustStack,
};

/// DAG id of the big fan-out.
const DAG_ID: &str = "bench_big";

/// Runs the big fan-out `ctx.repeat` times.
pub async fn run(ctx: &Ctx) -> ScenarioOutcome {
    let n = ctx.big_tasks;
    let files = vec![(format!("{DAG_ID}.yaml"), dags::fanout(DAG_ID, n, Op::Noop))];
    repeat(ctx, "big", async |_| {
        GustStack::with(ctx, &files, async |stack| {
            let mut out = fanout::measure(ctx, stack, DAG_ID, n, true).await?;
            for metric in &mut out {
                metric.key = metric.key.trim_start_matches("res_").to_string();
            }
            out.extend(halves(stack, n).await?);
            Ok(out)
        })
        .await
    })
    .await
    .note(format!(
        "{n} noop tasks in one run, {} workers × concurrency {}; memory sampled every 100 ms (worker = worker-0); \
         halves: tasks/s until half the tasks had ended, and over the rest",
        ctx.workers, ctx.concurrency
    ))
}

/// Throughput of the first and the second half of the completions of the run of [`DAG_ID`].
async fn halves(stack: &GustStack, n: usize) -> anyhow::Result<Vec<Measurement>> {
    let row = stack
        .db
        .query_one(
            "WITH ends AS (SELECT end_date FROM task_instances WHERE dag_id = $1), \
                  marks AS (SELECT (SELECT queued_at FROM dag_runs WHERE dag_id = $1) AS queued, \
                                   percentile_disc(0.5) WITHIN GROUP (ORDER BY end_date) AS half, max(end_date) AS last \
                            FROM ends) \
             SELECT extract(epoch FROM half - queued)::float8, extract(epoch FROM last - half)::float8 FROM marks",
            &[&DAG_ID],
        )
        .await
        .context("reading when the task instances ended")?;
    let (first_s, second_s): (f64, f64) = (row.get(0), row.get(1));
    let half = n as f64 / 2.0;
    let (first, second) = (half / first_s, half / second_s);
    Ok(vec![
        m("first_half_tasks_per_s", "throughput until half the tasks ended", "tasks/s", first),
        m("second_half_tasks_per_s", "throughput over the second half", "tasks/s", second),
        m("half_ratio", "second half / first half throughput (flat ≈ 1)", "×", second / first),
    ])
}
