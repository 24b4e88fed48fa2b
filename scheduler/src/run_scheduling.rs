//! Moving one run forward: starting it (creating its task instances), then
//! applying readiness decisions and ending it when every task is finished.

use deadpool_postgres::Pool;
use gust_shared::{
    db::{runs, task_instances},
    state::{RunState, TaskState},
};

use crate::{error::SchedulerError, readiness, versions::VersionCache};

/// Schedules one run under its row lock; another scheduler holding the lock
/// means the run is being handled, so it is skipped.
pub async fn schedule_run(pool: &Pool, versions: &VersionCache, run_pk: i64) -> Result<(), SchedulerError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let Some(run) = runs::lock_live(&tx, run_pk).await? else { return Ok(()) };
    let dag = versions.get(&tx, run.dag_version_id).await?;

    if run.state == RunState::Queued {
        // Serialises run starts per DAG so max_active_runs holds across schedulers.
        tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&run.dag_id]).await?;
        if runs::dag_is_paused(&tx, &run.dag_id).await? {
            return Ok(());
        }
        if runs::count_running(&tx, &run.dag_id).await? >= i64::from(dag.max_active_runs) {
            return Ok(());
        }
        task_instances::create_for_run(&tx, run.id, &run.dag_id, &run.run_id, &dag.tasks).await?;
        runs::start(&tx, run.id).await?;
        tracing::info!(dag_id = %run.dag_id, run_id = %run.run_id, tasks = dag.tasks.len(), "run started");
    }

    let instances = task_instances::states_for_run(&tx, run.id).await?;
    let decisions = readiness::decide(&dag, &instances);
    task_instances::transition_many(&tx, &decisions.schedule, TaskState::Scheduled).await?;
    task_instances::transition_many(&tx, &decisions.upstream_failed, TaskState::UpstreamFailed).await?;
    task_instances::transition_many(&tx, &decisions.skip, TaskState::Skipped).await?;
    for (id, task_id, _) in &instances {
        if decisions.upstream_failed.contains(id) {
            tracing::info!(dag_id = %run.dag_id, run_id = %run.run_id, %task_id, "task upstream_failed");
        }
    }
    if let Some(outcome) = decisions.run_outcome {
        if runs::finish(&tx, run.id, outcome).await? {
            tracing::info!(dag_id = %run.dag_id, run_id = %run.run_id, state = %outcome, "run finished");
        }
    }
    tx.commit().await?;
    Ok(())
}
