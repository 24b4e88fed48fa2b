//! Fan-out: one run of one DAG with N independent tasks. Measures tasks/s
//! over the run's lifetime (`end_date − queued_at` of its `dag_runs` row)
//! and the time to the first task start; for the noop fan-out it also
//! samples the scheduler's and a worker's memory and CPU (the resources scenario).

use std::time::Duration;

use anyhow::{bail, ensure};

use super::{m, repeat, Ctx, Measurement, ScenarioOutcome};
use crate::{
    dags::{self, Op},
    resources::{self, mib, Sampler},
    stack::GustStack,
};

/// DAG id of the noop fan-out.
pub const DAG_ID: &str = "bench_fanout";
/// Longest a fan-out run may take before it counts as failed.
pub const TIMEOUT: Duration = Duration::from_secs(600);
/// Key prefix of the measurements that belong to the resources scenario.
const RESOURCE_PREFIX: &str = "res_";
/// How long a worker must have been up, with nothing to do, before its idle RSS is read.
const IDLE_AFTER: Duration = Duration::from_secs(2);

/// Runs the noop fan-out `ctx.repeat` times; returns the fanout and the resources outcomes.
pub async fn run(ctx: &Ctx) -> Vec<ScenarioOutcome> {
    let n = ctx.fanout_tasks;
    let files = vec![(format!("{DAG_ID}.yaml"), dags::fanout(DAG_ID, n, Op::Noop))];
    let outcome = repeat(ctx, "fanout", async |_| {
        GustStack::with(ctx, &files, async |stack| measure(ctx, stack, DAG_ID, n, true).await).await
    })
    .await;
    let (mut fanout, mut res) = (outcome.clone(), outcome);
    fanout.metrics.retain(|metric| !metric.key.starts_with(RESOURCE_PREFIX));
    res.name = "resources".into();
    res.metrics.retain(|metric| metric.key.starts_with(RESOURCE_PREFIX));
    for metric in &mut res.metrics {
        metric.key = metric.key.trim_start_matches(RESOURCE_PREFIX).to_string();
    }
    let fanout = fanout.note(format!(
        "{n} noop tasks in one run, {} workers × concurrency {}; tasks/s = N / (end_date − queued_at) of the dag_runs row",
        ctx.workers, ctx.concurrency
    ));
    let res = res.note(format!(
        "sampled every 100 ms during the noop fan-out of {n} tasks; worker = worker-0; CPU = utime+stime from /proc/<pid>/stat"
    ));
    vec![fanout, res]
}

/// CPU seconds used so far by the services gust shares the machine with.
#[derive(Debug, Clone, Copy)]
struct ServicesCpu {
    postgres: f64,
    rabbitmq: f64,
    machine_busy: Option<f64>,
}

impl std::ops::Sub for ServicesCpu {
    type Output = ServicesCpu;

    fn sub(self, before: ServicesCpu) -> ServicesCpu {
        ServicesCpu {
            postgres: self.postgres - before.postgres,
            rabbitmq: self.rabbitmq - before.rabbitmq,
            machine_busy: self.machine_busy.zip(before.machine_busy).map(|(now, then)| now - then),
        }
    }
}

fn services_cpu(clk_tck: f64) -> ServicesCpu {
    ServicesCpu {
        postgres: resources::cpu_seconds_of_commands(&["postgres"], clk_tck),
        rabbitmq: resources::cpu_seconds_of_commands(&["beam.smp", "erl_child_setup", "inet_gethost"], clk_tck),
        machine_busy: resources::machine_busy_seconds(clk_tck),
    }
}

/// Triggers one run of the fan-out DAG `dag_id` (`n` tasks) on `stack` and
/// measures it; with `sample_resources`, also memory and CPU.
pub async fn measure(
    ctx: &Ctx,
    stack: &mut GustStack,
    dag_id: &str,
    n: usize,
    sample_resources: bool,
) -> anyhow::Result<Vec<Measurement>> {
    stack.wait_for_dag(dag_id).await?;
    let scheduler = stack.scheduler_pid();
    let Some(worker) = stack.workers.first().map(|w| w.pid()) else { bail!("the stack has no worker") };
    let worker_pids: Vec<i32> = stack.workers.iter().map(|w| w.pid()).collect();
    let mut out = Vec::new();
    if sample_resources {
        let idle_for = stack.workers_started.elapsed();
        if idle_for < IDLE_AFTER {
            tokio::time::sleep(IDLE_AFTER - idle_for).await;
        }
        stack.ensure_running()?;
        let idle = resources::memory(worker)?;
        let scheduler_idle = resources::memory(scheduler)?;
        out.push(m("res_worker_idle_rss_mib", "idle worker RSS (≥2 s after start)", "MiB", mib(idle.rss_kib)));
        out.push(m("res_scheduler_idle_rss_mib", "scheduler RSS before the run", "MiB", mib(scheduler_idle.rss_kib)));
    }
    let cpu = |pid| resources::cpu_seconds(pid, ctx.clk_tck);
    let scheduler_cpu_before = cpu(scheduler)?;
    let workers_cpu_before: f64 = worker_pids.iter().map(|&p| cpu(p)).sum::<anyhow::Result<f64>>()?;
    let children_cpu = |pids: &[i32]| {
        pids.iter().map(|&p| resources::children_cpu_seconds(p, ctx.clk_tck)).sum::<anyhow::Result<f64>>()
    };
    let children_cpu_before = children_cpu(&worker_pids)?;
    let services_before = services_cpu(ctx.clk_tck);
    let window = std::time::Instant::now();
    let sampler = sample_resources.then(|| Sampler::start(vec![scheduler, worker], Duration::from_millis(100)));

    let (run_id, _) = stack.trigger(dag_id).await?;
    let waited = stack.wait_for_run(dag_id, &run_id, TIMEOUT).await;
    let peaks = sampler.map(Sampler::stop);
    let times = waited?;
    ensure!(times.succeeded == n as i64, "only {} of {n} task instances succeeded", times.succeeded);

    out.push(m("tasks_per_s", "throughput", "tasks/s", n as f64 / times.total_s));
    out.push(m("run_s", "run time (queued → finished)", "s", times.total_s));
    out.push(m("first_task_start_ms", "time to first task start", "ms", times.first_start_s * 1000.0));
    out.push(m(
        "dispatch_per_s",
        "dispatch rate (N / time until the last task was queued)",
        "tasks/s",
        n as f64 / times.last_queued_s,
    ));
    out.push(m("queue_wait_p50_ms", "task wait in the broker, queued → started (p50)", "ms", times.queue_wait_p50_ms));
    out.push(m("in_worker_p50_ms", "claim → outcome recorded on the worker (p50)", "ms", times.in_worker_p50_ms));

    if let Some(peaks) = peaks {
        let scheduler_cpu = cpu(scheduler)? - scheduler_cpu_before;
        let workers_cpu = worker_pids.iter().map(|&p| cpu(p)).sum::<anyhow::Result<f64>>()? - workers_cpu_before;
        let services = services_cpu(ctx.clk_tck) - services_before;
        let window_s = window.elapsed().as_secs_f64();
        let per_1k = |seconds: f64| seconds / (n as f64 / 1000.0);
        let (s, w) = (peaks[0], peaks[1]);
        out.push(m("res_scheduler_rss_max_mib", "scheduler RSS, largest sample", "MiB", mib(s.max_rss_kib)));
        out.push(m("res_scheduler_hwm_mib", "scheduler peak RSS (VmHWM)", "MiB", mib(s.hwm_kib)));
        out.push(m("res_worker_rss_max_mib", "worker RSS, largest sample", "MiB", mib(w.max_rss_kib)));
        out.push(m("res_worker_hwm_mib", "worker peak RSS (VmHWM)", "MiB", mib(w.hwm_kib)));
        out.push(m("res_scheduler_cpu_s_per_1k", "scheduler CPU per 1,000 tasks", "s", per_1k(scheduler_cpu)));
        out.push(m("res_workers_cpu_s_per_1k", "CPU of all workers per 1,000 tasks", "s", per_1k(workers_cpu)));
        let children = children_cpu(&worker_pids)? - children_cpu_before;
        if children > 0.0 {
            out.push(m(
                "res_task_processes_cpu_s_per_1k",
                "CPU of the processes the workers ran for tasks (bash) per 1,000 tasks",
                "s",
                per_1k(children),
            ));
        }
        out.push(m(
            "res_postgres_cpu_s_per_1k",
            "PostgreSQL CPU (all backends) per 1,000 tasks",
            "s",
            per_1k(services.postgres),
        ));
        out.push(m("res_rabbitmq_cpu_s_per_1k", "RabbitMQ CPU per 1,000 tasks", "s", per_1k(services.rabbitmq)));
        if let Some(busy) = services.machine_busy {
            out.push(m("res_machine_cpu_s_per_1k", "whole machine busy CPU per 1,000 tasks", "s", per_1k(busy)));
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
            out.push(m(
                "res_machine_busy_pct",
                "machine CPU busy from trigger to the run's end",
                "%",
                100.0 * busy / (window_s * cores),
            ));
        }
        out.push(m("res_samples", "memory samples taken", "", s.samples as f64));
    }
    Ok(out)
}
