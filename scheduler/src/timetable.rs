//! Creating scheduled runs when a DAG's data intervals have ended.
//!
//! With `catchup`, every missed interval gets a run, oldest first, but only
//! while the DAG has fewer live (queued or running) runs than
//! `max_active_runs`, as in Airflow; without it only the latest ended
//! interval does. Neither ever goes back before the DAG's latest scheduled
//! run. A per-DAG advisory lock makes schedulers take turns, so the room
//! under `max_active_runs` is counted right, and the unique logical date
//! keeps creation exactly-once regardless.

use chrono::{DateTime, Utc};
use deadpool_postgres::{Client, Pool};
use gust_shared::{
    dag::DataInterval,
    db::{
        dags::{self, DagVersion},
        runs::{self, CreateRunError, NewRun},
    },
};

use crate::error::SchedulerError;

/// Creates the runs of every scheduled DAG whose intervals are due; returns how many.
pub async fn create_due_runs(pool: &Pool) -> Result<usize, SchedulerError> {
    let mut client = pool.get().await?;
    let now = Utc::now();
    let mut created = 0;
    for version in dags::scheduled(&client).await? {
        created += create_for_dag(&mut client, &version, now).await?;
    }
    Ok(created)
}

async fn create_for_dag(
    client: &mut Client,
    version: &DagVersion,
    now: DateTime<Utc>,
) -> Result<usize, SchedulerError> {
    let dag = &version.definition;
    let Some(schedule) = &dag.schedule else { return Ok(0) };
    let bounds = dag.schedule_bounds();
    let last = runs::latest_scheduled_logical_date(&*client, &dag.dag_id).await?;
    if schedule.due_intervals(&bounds, now, last, dag.catchup, 1).is_empty() {
        return Ok(0);
    }
    let mut tx = client.transaction().await?;
    runs::lock_run_creation(&tx, &dag.dag_id).await?;
    let live = runs::count_live(&tx, &dag.dag_id).await?;
    let mut room = usize::try_from(i64::from(dag.max_active_runs) - live).unwrap_or(0);
    let mut last = runs::latest_scheduled_logical_date(&tx, &dag.dag_id).await?;
    let mut created = 0;
    // A manual run may already hold an interval's logical date; skip past it and keep going.
    while room > 0 {
        let due = schedule.due_intervals(&bounds, now, last, dag.catchup, room);
        if due.is_empty() {
            break;
        }
        for interval in due {
            last = Some(interval.start);
            if insert_run(&mut tx, version, interval).await? {
                created += 1;
                room -= 1;
            }
        }
    }
    tx.commit().await?;
    Ok(created)
}

/// Inserts the scheduled run of `interval`; false when its logical date is taken.
async fn insert_run(
    tx: &mut deadpool_postgres::Transaction<'_>,
    version: &DagVersion,
    interval: DataInterval,
) -> Result<bool, SchedulerError> {
    let dag = &version.definition;
    let run_id = format!("scheduled__{}", interval.start.to_rfc3339());
    let conf = serde_json::json!({});
    let new_run = NewRun {
        dag_id: &dag.dag_id,
        run_id: &run_id,
        run_type: "scheduled",
        logical_date: Some(interval.start),
        data_interval: Some((interval.start, interval.end)),
        conf: &conf,
        dag_version_id: version.id,
        triggered_by: "scheduler",
        triggering_user_name: None,
    };
    let savepoint = tx.savepoint("create_run").await?;
    match runs::insert(&savepoint, &new_run).await {
        Ok(run) => {
            savepoint.commit().await?;
            tracing::info!(dag_id = %run.dag_id, run_id = %run.run_id, "scheduled run created");
            Ok(true)
        }
        Err(CreateRunError::Duplicate { .. }) => {
            savepoint.rollback().await?;
            Ok(false)
        }
        Err(CreateRunError::Db(e)) => Err(e.into()),
    }
}
