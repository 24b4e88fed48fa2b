//! Scale: the noop fan-out with 1, 2, 4 and 8 worker processes, in two
//! modes: the same total concurrency split across the workers (does adding
//! processes cost anything?) and a fixed concurrency per worker (does
//! throughput grow with workers?). Each point is a fresh stack; tasks/s is
//! measured as in the fanout scenario. Not part of `all`: eight stacks per
//! repetition.

use super::{fanout, m, repeat, Ctx, Measurement, ScenarioOutcome};
use crate::{
    dags::{self, Op},
    stack::GustStack,
};

/// Worker processes at each point of the curve.
pub const WORKER_COUNTS: [usize; 4] = [1, 2, 4, 8];
/// Total concurrency of the same-total mode, split evenly across the workers.
pub const SAME_TOTAL: usize = 32;
/// Concurrency of each worker in the growing mode.
pub const PER_WORKER: usize = 16;

/// How concurrency is given to the workers of one point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// [`SAME_TOTAL`] slots split across the workers.
    SameTotal,
    /// [`PER_WORKER`] slots in every worker.
    Growing,
}

impl Mode {
    /// Key fragment of the metrics of this mode.
    pub fn key(self) -> &'static str {
        match self {
            Mode::SameTotal => "same_total",
            Mode::Growing => "growing",
        }
    }

    /// Concurrency of each of `workers` workers.
    pub fn per_worker(self, workers: usize) -> usize {
        match self {
            Mode::SameTotal => (SAME_TOTAL / workers).max(1),
            Mode::Growing => PER_WORKER,
        }
    }
}

/// Runs the fan-out at every point of both curves, `ctx.repeat` times.
pub async fn run(ctx: &Ctx) -> ScenarioOutcome {
    let n = ctx.fanout_tasks;
    let files = vec![(format!("{}.yaml", fanout::DAG_ID), dags::fanout(fanout::DAG_ID, n, Op::Noop))];
    repeat(ctx, "scale", async |_| {
        let mut out = Vec::new();
        for mode in [Mode::SameTotal, Mode::Growing] {
            for workers in WORKER_COUNTS {
                out.extend(point(ctx, &files, n, mode, workers).await?);
            }
        }
        Ok(out)
    })
    .await
    .note(format!(
        "{n} noop tasks in one run per point, a fresh stack each; {} workers; same_total = {SAME_TOTAL} slots split across \
         the workers, growing = {PER_WORKER} slots per worker; key tasks_per_s_w<workers>_<mode>",
        WORKER_COUNTS.map(|w| w.to_string()).join("/")
    ))
}

/// One fan-out on a stack of `workers` workers with `mode`'s concurrency.
async fn point(
    ctx: &Ctx,
    files: &[(String, String)],
    n: usize,
    mode: Mode,
    workers: usize,
) -> anyhow::Result<Vec<Measurement>> {
    let per_worker = mode.per_worker(workers);
    let point_ctx = Ctx { workers, concurrency: per_worker, ..ctx.clone() };
    let measured = GustStack::with(&point_ctx, files, async |stack| {
        fanout::measure(&point_ctx, stack, fanout::DAG_ID, n, false).await
    })
    .await?;
    let tasks_per_s = measured
        .iter()
        .find(|m| m.key == "tasks_per_s")
        .map(|m| m.value)
        .ok_or_else(|| anyhow::anyhow!("the fan-out measured no tasks_per_s"))?;
    let plural = if workers == 1 { "" } else { "s" };
    eprintln!("[scale]   {workers} worker{plural} × {per_worker} ({}): {tasks_per_s:.0} tasks/s", mode.key());
    let total = workers * per_worker;
    Ok(vec![m(
        &point_key(workers, mode),
        &format!("throughput, {workers} worker{plural} × {per_worker} slots ({total} total)"),
        "tasks/s",
        tasks_per_s,
    )])
}

/// Metric key of one point: `tasks_per_s_w<workers>_<mode>`.
pub fn point_key(workers: usize, mode: Mode) -> String {
    format!("tasks_per_s_w{workers}_{}", mode.key())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_total_splits_the_slots_and_growing_keeps_them_per_worker() {
        let same: Vec<usize> = WORKER_COUNTS.iter().map(|&w| Mode::SameTotal.per_worker(w)).collect();
        let growing: Vec<usize> = WORKER_COUNTS.iter().map(|&w| Mode::Growing.per_worker(w)).collect();
        assert_eq!(same, vec![32, 16, 8, 4]);
        assert_eq!(growing, vec![16, 16, 16, 16]);
    }

    #[test]
    fn point_keys_name_workers_and_mode_for_the_plot() {
        assert_eq!(point_key(4, Mode::SameTotal), "tasks_per_s_w4_same_total");
        assert_eq!(point_key(8, Mode::Growing), "tasks_per_s_w8_growing");
    }
}
