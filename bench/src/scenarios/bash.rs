//! Bash: the fan-out and the chain with `bash` tasks running `true`, so
//! every task forks a shell in its own process group and streams its
//! (empty) output. Both DAGs live in one stack per repetition. The fan-out
//! samples resources as the noop one does, with the shells' CPU apart, to
//! say where a bash task's time goes.

use super::{chain, fanout, repeat, Ctx, ScenarioOutcome};
use crate::{
    dags::{self, Op},
    stack::GustStack,
};

/// DAG id of the bash fan-out.
const FANOUT_DAG: &str = "bench_bash_fanout";
/// DAG id of the bash chain.
const CHAIN_DAG: &str = "bench_bash_chain";

/// Runs the bash fan-out then the bash chain, `ctx.repeat` times.
pub async fn run(ctx: &Ctx) -> ScenarioOutcome {
    let (n, len) = (ctx.bash_fanout_tasks, ctx.bash_chain_len);
    let files = vec![
        (format!("{FANOUT_DAG}.yaml"), dags::fanout(FANOUT_DAG, n, Op::BashTrue)),
        (format!("{CHAIN_DAG}.yaml"), dags::chain(CHAIN_DAG, len, Op::BashTrue)),
    ];
    repeat(ctx, "bash", async |_| {
        GustStack::with(ctx, &files, async |stack| {
            let mut out = Vec::new();
            for mut measurement in fanout::measure(ctx, stack, FANOUT_DAG, n, true).await? {
                measurement.key = format!("fanout_{}", measurement.key);
                measurement.label = format!("fan-out {}", measurement.label);
                out.push(measurement);
            }
            for mut measurement in chain::measure(stack, CHAIN_DAG, len).await?.measurements("chain_") {
                measurement.label = format!("chain {}", measurement.label);
                out.push(measurement);
            }
            Ok(out)
        })
        .await
    })
    .await
    .note(format!(
        "fan-out of {n} and chain of {len} `bash -c true` tasks, {} workers × concurrency {}",
        ctx.workers, ctx.concurrency
    ))
}
