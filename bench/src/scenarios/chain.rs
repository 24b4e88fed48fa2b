//! Chain: one run of N tasks in a line. Each edge's hop latency is
//! `downstream.start_date − upstream.end_date` from `task_instances`: the
//! worker's commit, the NOTIFY, the scheduler's decision, the publish with
//! confirms and the delivery to a worker that claims the task. Each hop is
//! also split at the downstream task's `queued_at` (the scheduler's dispatch
//! statement): "decide" is upstream end → queued, "deliver" is queued → start.

use std::{collections::HashMap, time::Duration};

use anyhow::{bail, Context};

use super::{m, repeat, Ctx, Measurement, ScenarioOutcome};
use crate::{
    dags::{self, Op},
    stack::GustStack,
    stats::percentile,
};

/// DAG id of the noop chain.
pub const DAG_ID: &str = "bench_chain";
/// Longest a chain run may take before it counts as failed.
pub const TIMEOUT: Duration = Duration::from_secs(300);

/// What one chain run showed.
#[derive(Debug, Clone)]
pub struct ChainRun {
    /// Hop latency of each edge, in ms, in chain order.
    pub hops_ms: Vec<f64>,
    /// `end_date − queued_at` of the run, in s.
    pub total_s: f64,
    /// The hops split at the downstream task's `queued_at` (gust only).
    pub split: Option<HopSplit>,
}

/// Each hop in two parts, in ms, in chain order.
#[derive(Debug, Clone)]
pub struct HopSplit {
    /// Upstream `end_date` → downstream `queued_at`: commit, NOTIFY, readiness, dispatch statement.
    pub decide_ms: Vec<f64>,
    /// Downstream `queued_at` → `start_date`: commit, publish with confirm, delivery, claim.
    pub deliver_ms: Vec<f64>,
}

impl ChainRun {
    /// p50/p90/p99/max of the hops and the run time, keys prefixed with `prefix`.
    pub fn measurements(&self, prefix: &str) -> Vec<Measurement> {
        let p = |q| percentile(&self.hops_ms, q).unwrap_or(f64::NAN);
        let mut out = vec![
            m(&format!("{prefix}hop_p50_ms"), "per-hop latency p50", "ms", p(50.0)),
            m(&format!("{prefix}hop_p90_ms"), "per-hop latency p90", "ms", p(90.0)),
            m(&format!("{prefix}hop_p99_ms"), "per-hop latency p99", "ms", p(99.0)),
            m(&format!("{prefix}hop_max_ms"), "per-hop latency max", "ms", p(100.0)),
            m(&format!("{prefix}run_s"), "run time (queued → finished)", "s", self.total_s),
        ];
        if let Some(split) = &self.split {
            let p50 = |hops: &[f64]| percentile(hops, 50.0).unwrap_or(f64::NAN);
            out.push(m(
                &format!("{prefix}hop_decide_p50_ms"),
                "hop part 1, upstream end → downstream queued (p50)",
                "ms",
                p50(&split.decide_ms),
            ));
            out.push(m(
                &format!("{prefix}hop_deliver_p50_ms"),
                "hop part 2, downstream queued → started (p50)",
                "ms",
                p50(&split.deliver_ms),
            ));
        }
        out
    }
}

/// Runs the noop chain `ctx.repeat` times.
pub async fn run(ctx: &Ctx) -> ScenarioOutcome {
    let n = ctx.chain_len;
    let files = vec![(format!("{DAG_ID}.yaml"), dags::chain(DAG_ID, n, Op::Noop))];
    repeat(ctx, "chain", async |_| {
        GustStack::with(ctx, &files, async |stack| Ok(measure(stack, DAG_ID, n).await?.measurements(""))).await
    })
    .await
    .note(format!(
        "{n} noop tasks in a line, {} hops; hop = downstream.start_date − upstream.end_date (database clock)",
        n.saturating_sub(1)
    ))
}

/// Triggers one run of the chain DAG `dag_id` (`n` tasks) and reads its hops.
pub async fn measure(stack: &mut GustStack, dag_id: &str, n: usize) -> anyhow::Result<ChainRun> {
    stack.wait_for_dag(dag_id).await?;
    let (run_id, _) = stack.trigger(dag_id).await?;
    let times = stack.wait_for_run(dag_id, &run_id, TIMEOUT).await?;
    if times.succeeded != n as i64 {
        bail!("only {} of {n} task instances succeeded", times.succeeded);
    }
    // Offsets from the run's queued_at keep full microsecond precision in an f64.
    let rows = stack
        .db
        .query(
            "SELECT ti.task_id, extract(epoch FROM ti.queued_at - r.queued_at)::float8, \
                 extract(epoch FROM ti.start_date - r.queued_at)::float8, \
                 extract(epoch FROM ti.end_date - r.queued_at)::float8 \
             FROM task_instances ti JOIN dag_runs r ON r.id = ti.run_pk \
             WHERE r.dag_id = $1 AND r.run_id = $2",
            &[&dag_id, &run_id],
        )
        .await?;
    let offset = |r: &tokio_postgres::Row, i| r.get::<_, Option<f64>>(i);
    let times_of: HashMap<String, (f64, f64)> =
        rows.iter().filter_map(|r| Some((r.get::<_, String>(0), (offset(r, 2)?, offset(r, 3)?)))).collect();
    let queued_of: HashMap<String, (f64, f64)> =
        rows.iter().filter_map(|r| Some((r.get::<_, String>(0), (offset(r, 1)?, offset(r, 2)?)))).collect();
    let hops = hops_ms(n, &times_of)?;
    let split = split_ms(n, &times_of, &queued_of)?;
    Ok(ChainRun { hops_ms: hops, total_s: times.total_s, split: Some(split) })
}

/// Each hop split at the downstream task's `queued_at`, from each task's (start, end) and (queued, start) in s.
fn split_ms(
    n: usize,
    times_of: &HashMap<String, (f64, f64)>,
    queued_of: &HashMap<String, (f64, f64)>,
) -> anyhow::Result<HopSplit> {
    let get = |map: &HashMap<String, (f64, f64)>, i: usize| {
        let id = dags::task_id(i, n);
        map.get(&id).copied().with_context(|| format!("task {id} has no queued/start/end times"))
    };
    let mut split = HopSplit { decide_ms: Vec::new(), deliver_ms: Vec::new() };
    for i in 1..n {
        let (queued, start) = get(queued_of, i)?;
        split.decide_ms.push((queued - get(times_of, i - 1)?.1) * 1000.0);
        split.deliver_ms.push((start - queued) * 1000.0);
    }
    Ok(split)
}

/// Hop latencies (ms) of a chain of `n` tasks from each task's (start, end) in seconds.
fn hops_ms(n: usize, times_of: &HashMap<String, (f64, f64)>) -> anyhow::Result<Vec<f64>> {
    let get = |i: usize| {
        let id = dags::task_id(i, n);
        times_of.get(&id).copied().with_context(|| format!("task {id} has no start/end times"))
    };
    (1..n).map(|i| Ok((get(i)?.0 - get(i - 1)?.1) * 1000.0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hops_are_next_start_minus_previous_end() {
        let times: HashMap<String, (f64, f64)> = [
            ("t000".to_string(), (0.000, 0.001)),
            ("t001".to_string(), (0.004, 0.005)),
            ("t002".to_string(), (0.015, 0.016)),
        ]
        .into();
        let hops = hops_ms(3, &times).unwrap();
        assert_eq!(hops.len(), 2);
        assert!((hops[0] - 3.0).abs() < 1e-9 && (hops[1] - 10.0).abs() < 1e-9, "{hops:?}");
    }

    #[test]
    fn a_hop_splits_at_the_downstream_tasks_queued_at() {
        let times: HashMap<String, (f64, f64)> =
            [("t000".to_string(), (0.000, 0.001)), ("t001".to_string(), (0.004, 0.005))].into();
        let queued: HashMap<String, (f64, f64)> =
            [("t000".to_string(), (0.0, 0.0)), ("t001".to_string(), (0.0025, 0.004))].into();
        let split = split_ms(2, &times, &queued).unwrap();
        assert!((split.decide_ms[0] - 1.5).abs() < 1e-9 && (split.deliver_ms[0] - 1.5).abs() < 1e-9, "{split:?}");
    }

    #[test]
    fn a_missing_task_is_an_error() {
        let times: HashMap<String, (f64, f64)> = [("t000".to_string(), (0.0, 0.1))].into();
        assert!(hops_ms(2, &times).is_err());
    }
}
