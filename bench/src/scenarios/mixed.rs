//! Mixed: what a stack has run before must not change how fast it runs the
//! next thing. On one stack: a noop chain, `ANALYZE` (statistics of a small
//! table, as autovacuum would gather them), the noop fan-out, and the chain
//! again. Its fan-out tasks/s is compared with the fresh stack's of the
//! `fanout` scenario; the chains' hop p50 with the `chain` scenario's.
//!
//! This caught the plan freeze of issue 19: before the fix, prepared
//! statements planned while `task_instances` held one chain kept their
//! sequential-scan plans while the fan-out grew the table fifty-fold
//! (1,050–1,190 tasks/s after a chain against 4,000–4,800 on a fresh stack).

use anyhow::Context;

use super::{chain, fanout, m, repeat, Ctx, ScenarioOutcome};
use crate::{
    dags::{self, Op},
    stack::GustStack,
};

/// DAG id of the chain run before and after the fan-out.
const CHAIN_ID: &str = "bench_mixed_chain";
/// DAG id of the fan-out.
const FANOUT_ID: &str = "bench_mixed_fanout";

/// Runs chain, ANALYZE, fan-out, chain on one stack, `ctx.repeat` times.
pub async fn run(ctx: &Ctx) -> ScenarioOutcome {
    let (n, chain_len) = (ctx.fanout_tasks, ctx.chain_len);
    let files = vec![
        (format!("{CHAIN_ID}.yaml"), dags::chain(CHAIN_ID, chain_len, Op::Noop)),
        (format!("{FANOUT_ID}.yaml"), dags::fanout(FANOUT_ID, n, Op::Noop)),
    ];
    repeat(ctx, "mixed", async |_| {
        GustStack::with(ctx, &files, async |stack| {
            let before = chain::measure(stack, CHAIN_ID, chain_len).await.context("the first chain")?;
            stack.db.batch_execute("ANALYZE").await.context("ANALYZE after the first chain")?;
            let fan_out = fanout::measure(ctx, stack, FANOUT_ID, n, false).await.context("the fan-out")?;
            let after = chain::measure(stack, CHAIN_ID, chain_len).await.context("the chain after the fan-out")?;
            let mut out: Vec<_> = fan_out.into_iter().filter(|metric| metric.key == "tasks_per_s").collect();
            out.extend(before.measurements("first_chain_").into_iter().filter(|metric| metric.key.ends_with("hop_p50_ms")));
            out.extend(after.measurements("last_chain_").into_iter().filter(|metric| metric.key.ends_with("hop_p50_ms")));
            out.push(m("last_chain_run_s", "chain after the fan-out: run time", "s", after.total_s));
            Ok(out)
        })
        .await
    })
    .await
    .note(format!(
        "one stack: a {chain_len}-task noop chain, ANALYZE, a {n}-task noop fan-out ({} workers × concurrency {}), the chain again; compare tasks/s with `fanout` (a fresh stack)",
        ctx.workers, ctx.concurrency
    ))
}
