//! Moving one run forward: starting it (creating its task instances), then
//! applying readiness decisions and ending it when every task is finished.

use std::collections::HashSet;

use deadpool_postgres::Pool;
use gust_shared::{
    db::{runs, task_instances},
    state::{RunState, TaskState},
};

use crate::{error::SchedulerError, readiness, versions::VersionCache};

/// Schedules one run under its row lock; another scheduler holding the lock
/// means the run is being handled, so it is skipped. `finished` names the
/// tasks that just finished, so only their downstream tasks are looked at;
/// `None` looks at the whole run. Returns `Held` when a queued run may not
/// start yet (its DAG is paused or at `max_active_runs`).
pub async fn schedule_run(
    pool: &Pool,
    versions: &VersionCache,
    run_pk: i64,
    finished: Option<&HashSet<String>>,
) -> Result<Progress, SchedulerError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let Some(run) = runs::lock_live(&tx, run_pk).await? else { return Ok(Progress::Moved) };
    let dag = versions.get(&tx, run.dag_version_id).await?;

    if run.state == RunState::Queued {
        // Serialises run starts per DAG so max_active_runs holds across schedulers.
        tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&run.dag_id]).await?;
        if runs::dag_is_paused(&tx, &run.dag_id).await? {
            return Ok(Progress::Held);
        }
        if runs::count_running(&tx, &run.dag_id).await? >= i64::from(dag.max_active_runs) {
            return Ok(Progress::Held);
        }
        task_instances::create_for_run(&tx, run.id, &run.dag_id, &run.run_id, &dag.tasks).await?;
        runs::start(&tx, run.id).await?;
        tracing::info!(dag_id = %run.dag_id, run_id = %run.run_id, tasks = dag.tasks.len(), "run started");
    }

    let incremental = finished.filter(|_| run.state == RunState::Running);
    let instances = match incremental {
        None => task_instances::states_for_run(&tx, run.id).await?,
        Some(finished) => {
            // Only the direct downstreams of what finished can change; load them and their upstreams.
            let mut needed: HashSet<&str> = HashSet::new();
            for done in finished {
                for down in dag.downstream.get(done).into_iter().flatten() {
                    needed.insert(down);
                    if let Some(task) = dag.task(down) {
                        needed.extend(task.upstream.iter().map(String::as_str));
                    }
                }
            }
            let needed: Vec<&str> = needed.into_iter().collect();
            if needed.is_empty() {
                Vec::new()
            } else {
                task_instances::states_of_tasks(&tx, run.id, &needed).await?
            }
        }
    };
    let mut decisions = readiness::decide(&dag, &instances);
    if incremental.is_some() {
        decisions.run_outcome = None;
    }
    task_instances::transition_many(&tx, &decisions.schedule, TaskState::Scheduled).await?;
    task_instances::transition_many(&tx, &decisions.upstream_failed, TaskState::UpstreamFailed).await?;
    task_instances::transition_many(&tx, &decisions.skip, TaskState::Skipped).await?;
    for (id, task_id, _) in &instances {
        if decisions.upstream_failed.contains(id) {
            tracing::info!(dag_id = %run.dag_id, run_id = %run.run_id, %task_id, "task upstream_failed");
        }
    }
    let outcome = match decisions.run_outcome {
        Some(outcome) => Some(outcome),
        None if incremental.is_some() => task_instances::run_outcome(&tx, run.id).await?,
        None => None,
    };
    if let Some(outcome) = outcome {
        if runs::finish(&tx, run.id, outcome).await? {
            tracing::info!(dag_id = %run.dag_id, run_id = %run.run_id, state = %outcome, "run finished");
        }
    }
    tx.commit().await?;
    Ok(Progress::Moved)
}

/// Whether [`schedule_run`] could move the run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Started, advanced, or nothing to do.
    Moved,
    /// A queued run that may not start yet.
    Held,
}
