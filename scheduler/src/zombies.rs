//! Zombie detection: a running try whose worker stopped heartbeating (hung,
//! frozen or gone without its message coming back) is failed, or retried per
//! its retry rules. The worker, if it ever wakes, loses the compare-and-set.

use std::time::Duration;

use deadpool_postgres::Pool;
use gust_shared::{
    broker::Publish,
    db::{
        logs,
        task_instances::{dispatch, sweeps},
    },
    state::TaskState,
};

use crate::{dispatch::build_message, error::SchedulerError, versions::VersionCache};

/// Most zombies handled in one pass.
const BATCH: i64 = 100;

/// Fails or retries every try silent for longer than `threshold`; returns how many.
pub async fn reap(
    pool: &Pool,
    broker: &dyn Publish,
    versions: &VersionCache,
    threshold: Duration,
) -> Result<usize, SchedulerError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let zombies = sweeps::lock_zombies(&tx, threshold, BATCH).await?;
    for zombie in &zombies {
        let Some(info) = dispatch::dispatch_info(&tx, zombie.id).await? else { continue };
        let dag = versions.get(&tx, info.dag_version_id).await?;
        let Some(task) = dag.task(&info.task_id) else { continue };
        let delay_ms = task.retry_policy().delay_after(zombie.try_number);
        let reason = format!(
            "worker {} stopped heartbeating for over {threshold:?} while running try {}; the scheduler ended the try",
            zombie.hostname.as_deref().unwrap_or("?"),
            zombie.try_number
        );
        let state = sweeps::fail_zombie(&tx, zombie, &reason, delay_ms).await?;
        logs::append(&tx, zombie.id, zombie.try_number, &[(chrono::Utc::now(), "gust", reason.as_str())]).await?;
        if state == Some(TaskState::UpForRetry) {
            // A retry reruns the arguments rendered for the try, as a worker's retry does.
            let operator = info
                .rendered_fields
                .clone()
                .and_then(|fields| serde_json::from_value(fields).ok())
                .unwrap_or_else(|| task.operator.clone());
            broker.publish_delayed(&build_message(&info, task, operator), delay_ms).await?;
        }
        tracing::warn!(dag_id = %info.dag_id, run_id = %info.run_id, task_id = %info.task_id, try_number = zombie.try_number, ?state, "zombie task ended");
    }
    tx.commit().await?;
    Ok(zombies.len())
}
