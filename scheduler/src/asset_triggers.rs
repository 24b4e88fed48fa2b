//! Asset-triggered runs: when a DAG scheduled on assets has queued events
//! (woken by `gust_assets_queued`, and on every sweep as a safety net), one
//! transaction per DAG takes the DAG's run-creation lock, locks its queue
//! rows, evaluates its condition against the assets with unconsumed events
//! and, when it holds, creates one queued `asset_triggered` run linked to
//! those events and deletes the queue rows it consumed. Runs are created
//! `queued`, so `max_active_runs` holds them back like any other run.

use std::collections::HashSet;

use chrono::Utc;
use deadpool_postgres::Pool;
use gust_shared::db::{
    assets::scheduling,
    runs::{self, NewRun},
};

use crate::{error::SchedulerError, versions::VersionCache};

/// Airflow's `run_type` of a run its assets triggered.
pub const RUN_TYPE: &str = "asset_triggered";
/// Airflow's `triggered_by` of such a run.
pub const TRIGGERED_BY: &str = "asset";

/// Creates the asset-triggered runs due for `dag_ids`, or for every DAG with queued events when `None`; returns how many.
pub async fn create_triggered_runs(
    pool: &Pool,
    versions: &VersionCache,
    dag_ids: Option<&HashSet<String>>,
) -> Result<usize, SchedulerError> {
    let dag_ids: Vec<String> = match dag_ids {
        Some(ids) => ids.iter().cloned().collect(),
        None => scheduling::dags_with_queued_events(&pool.get().await?).await?,
    };
    let mut created = 0;
    for dag_id in dag_ids {
        match trigger_dag(pool, versions, &dag_id).await {
            Ok(true) => created += 1,
            Ok(false) => {}
            Err(e) => tracing::error!(%dag_id, error = %e, "creating an asset-triggered run failed"),
        }
    }
    Ok(created)
}

/// Creates the DAG's asset-triggered run if its condition holds; true when it did.
async fn trigger_dag(pool: &Pool, versions: &VersionCache, dag_id: &str) -> Result<bool, SchedulerError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    runs::lock_run_creation(&tx, dag_id).await?;
    let Some(version_id) = scheduling::schedulable_version(&tx, dag_id).await? else {
        return Ok(false);
    };
    let (pending, locked) = scheduling::lock_pending(&tx, dag_id).await?;
    if locked.is_empty() {
        return Ok(false);
    }
    let dag = versions.get(&tx, version_id).await?;
    let Some(condition) = &dag.asset_schedule else {
        // No longer asset-scheduled: its queue rows can never trigger anything.
        scheduling::dequeue(&tx, dag_id, &locked).await?;
        tx.commit().await?;
        return Ok(false);
    };
    let queued: HashSet<&str> = pending.iter().map(|e| e.uri.as_str()).collect();
    let with_events: HashSet<i64> = pending.iter().map(|e| e.asset_id).collect();
    let stale: Vec<i64> = locked.iter().copied().filter(|id| !with_events.contains(id)).collect();
    if !condition.evaluate(&queued) {
        if !stale.is_empty() {
            scheduling::dequeue(&tx, dag_id, &stale).await?;
            tx.commit().await?;
        }
        return Ok(false);
    }
    let triggered_at = pending.iter().map(|e| e.created_at).max().unwrap_or_else(Utc::now);
    let run_id = format!("{RUN_TYPE}__{}_{}", triggered_at.to_rfc3339(), random_suffix());
    let conf = serde_json::json!({});
    let run = runs::insert(
        &tx,
        &NewRun {
            dag_id,
            run_id: &run_id,
            run_type: RUN_TYPE,
            logical_date: None,
            data_interval: None,
            conf: &conf,
            dag_version_id: version_id,
            triggered_by: TRIGGERED_BY,
            triggering_user_name: None,
        },
    )
    .await
    .map_err(|e| match e {
        runs::CreateRunError::Db(e) => SchedulerError::Db(e),
        duplicate => SchedulerError::Db(gust_shared::db::DbError::Corrupt(duplicate.to_string())),
    })?;
    runs::set_run_after(&tx, run.id, triggered_at).await?;
    let event_ids: Vec<i64> = pending.iter().map(|e| e.event_id).collect();
    scheduling::link_events(&tx, run.id, &event_ids).await?;
    scheduling::dequeue(&tx, dag_id, &locked).await?;
    tx.commit().await?;
    tracing::info!(%dag_id, %run_id, events = event_ids.len(), "asset-triggered run created");
    Ok(true)
}

/// Eight random characters, as Airflow appends to the run id of a run without a logical date.
fn random_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}
