//! Creating scheduled runs when a DAG's data interval has ended.

use chrono::Utc;
use deadpool_postgres::Pool;
use gust_shared::db::{
    dags,
    runs::{self, CreateRunError, NewRun},
};

use crate::error::SchedulerError;

/// Creates the run of the latest completed interval of every scheduled DAG
/// (no catchup yet). The unique logical date makes this exactly-once even
/// with several schedulers.
pub async fn create_due_runs(pool: &Pool) -> Result<usize, SchedulerError> {
    let client = pool.get().await?;
    let now = Utc::now();
    let mut created = 0;
    for version in dags::scheduled(&client).await? {
        let dag = &version.definition;
        let Some(schedule) = &dag.schedule else { continue };
        let Some((start, end)) = schedule.latest_complete_interval(dag.start_date, now) else { continue };
        let run_id = format!("scheduled__{}", start.to_rfc3339());
        let conf = serde_json::json!({});
        let new_run = NewRun {
            dag_id: &dag.dag_id,
            run_id: &run_id,
            run_type: "scheduled",
            logical_date: Some(start),
            data_interval: Some((start, end)),
            conf: &conf,
            dag_version_id: version.id,
            triggered_by: "scheduler",
        };
        match runs::insert(&client, &new_run).await {
            Ok(run) => {
                created += 1;
                tracing::info!(dag_id = %run.dag_id, run_id = %run.run_id, "scheduled run created");
            }
            Err(CreateRunError::Duplicate { .. }) => {}
            Err(CreateRunError::Db(e)) => return Err(e.into()),
        }
    }
    Ok(created)
}
