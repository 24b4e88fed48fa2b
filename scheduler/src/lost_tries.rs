//! Tries whose worker or message is gone, ended by the scheduler so their
//! tasks go on (retried per their retry rules) or fail:
//!
//! - zombies: a running try whose worker stopped heartbeating (hung, frozen
//!   or gone without its message coming back). The worker, if it ever wakes,
//!   loses the compare-and-set.
//! - tries queued for longer than `task_queued_timeout` (Airflow's): their
//!   message was lost, as after a database restored from a backup taken
//!   while they waited in RabbitMQ (scripts/restore-drill), or no worker
//!   consumes their queue. If the message still arrives, its try is no longer
//!   queued and the worker drops it; the retry carries the next try number.
//! - pending retries (`up_for_retry`) whose retry was due longer than
//!   `task_queued_timeout` ago: their delayed message never arrived. The
//!   retry is published again, straight to its work queue; if the first copy
//!   still arrives, the claim of the second (or first) finds the try taken
//!   and drops it, so the retry runs once.

use std::time::Duration;

use deadpool_postgres::{Pool, Transaction};
use gust_shared::{
    broker::Publish,
    dag::{OperatorSpec, TaskSpec},
    db::{
        logs,
        task_instances::{
            dispatch::{self, Dispatchable},
            sweeps::{self, LostTry},
        },
    },
    state::TaskState,
};

use crate::{dispatch::build_message, error::SchedulerError, versions::VersionCache};

/// Most tries handled in one pass.
const BATCH: i64 = 100;

/// Fails or retries every try silent for longer than `threshold`; returns how many it ended.
pub async fn reap_zombies(
    pool: &Pool,
    broker: &dyn Publish,
    versions: &VersionCache,
    threshold: Duration,
) -> Result<usize, SchedulerError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let zombies = sweeps::lock_zombies(&tx, threshold, BATCH).await?;
    let mut ended = 0;
    for zombie in &zombies {
        let reason = format!(
            "worker {} stopped heartbeating for over {threshold:?} while running try {}; the scheduler ended the try",
            zombie.hostname.as_deref().unwrap_or("?"),
            zombie.try_number
        );
        ended += usize::from(end(&tx, broker, versions, Loss::Worker, zombie, &reason).await?);
    }
    tx.commit().await?;
    Ok(ended)
}

/// Fails or retries every try queued for longer than `timeout`; returns how many it ended.
pub async fn fail_queued_too_long(
    pool: &Pool,
    broker: &dyn Publish,
    versions: &VersionCache,
    timeout: Duration,
) -> Result<usize, SchedulerError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let stuck = sweeps::lock_queued_too_long(&tx, timeout, BATCH).await?;
    let mut ended = 0;
    for queued in &stuck {
        let reason = format!(
            "try {} was queued for over {timeout:?} (task_queued_timeout) and no worker took it: its message was lost \
             (a database restored from a backup, broker data lost) or no worker consumes its queue; the scheduler ended the try",
            queued.try_number
        );
        ended += usize::from(end(&tx, broker, versions, Loss::Message, queued, &reason).await?);
    }
    tx.commit().await?;
    Ok(ended)
}

/// Publishes again every retry due longer than `timeout` ago whose message never
/// reached a worker; returns how many it published.
pub async fn republish_overdue_retries(
    pool: &Pool,
    broker: &dyn Publish,
    versions: &VersionCache,
    timeout: Duration,
) -> Result<usize, SchedulerError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let overdue = sweeps::lock_overdue_retries(&tx, timeout, BATCH).await?;
    let mut republished = 0;
    for retry in &overdue {
        let Some(info) = dispatch::dispatch_info(&tx, retry.id).await? else { continue };
        let dag = versions.get(&tx, info.dag_version_id).await?;
        let Some(task) = dag.task(&info.task_id) else { continue };
        if !sweeps::retry_republished(&tx, retry).await? {
            continue;
        }
        let reason = format!(
            "the retry after try {} was due over {timeout:?} ago (task_queued_timeout) and no worker received it: \
             its delayed message was lost; the scheduler published the retry again",
            retry.try_number
        );
        logs::append(&tx, retry.id, retry.try_number, &[(chrono::Utc::now(), "gust", &reason)]).await?;
        broker.publish(&[build_message(&info, task, retry_operator(&info, task))]).await?;
        tracing::warn!(dag_id = %info.dag_id, run_id = %info.run_id, task_id = %info.task_id, try_number = retry.try_number, "overdue retry published again");
        republished += 1;
    }
    tx.commit().await?;
    Ok(republished)
}

/// What a lost try lost.
#[derive(Debug, Clone, Copy)]
enum Loss {
    /// Its worker (a zombie).
    Worker,
    /// Its message (queued too long).
    Message,
}

/// Ends `lost`, logs `reason` on the try, and publishes the retry to its
/// delay queue when the task has tries left. Returns whether it ended the
/// try (not when its run or task is gone, or the try moved on meanwhile).
async fn end(
    tx: &Transaction<'_>,
    broker: &dyn Publish,
    versions: &VersionCache,
    loss: Loss,
    lost: &LostTry,
    reason: &str,
) -> Result<bool, SchedulerError> {
    let Some(info) = dispatch::dispatch_info(tx, lost.id).await? else { return Ok(false) };
    let dag = versions.get(tx, info.dag_version_id).await?;
    let Some(task) = dag.task(&info.task_id) else { return Ok(false) };
    let delay_ms = task.retry_policy().delay_after(lost.try_number);
    let state = match loss {
        Loss::Worker => sweeps::fail_zombie(tx, lost, reason, delay_ms).await?,
        Loss::Message => sweeps::fail_queued_timeout(tx, lost, reason, delay_ms).await?,
    };
    if state.is_none() {
        return Ok(false);
    }
    logs::append(tx, lost.id, lost.try_number, &[(chrono::Utc::now(), "gust", reason)]).await?;
    if state == Some(TaskState::UpForRetry) {
        broker.publish_delayed(&build_message(&info, task, retry_operator(&info, task)), delay_ms).await?;
    }
    tracing::warn!(dag_id = %info.dag_id, run_id = %info.run_id, task_id = %info.task_id, try_number = lost.try_number, ?state, %reason, "lost try ended");
    Ok(true)
}

/// The operator of a retry: the arguments rendered for the try, as a worker's retry reruns them.
fn retry_operator(info: &Dispatchable, task: &TaskSpec) -> OperatorSpec {
    info.rendered_fields
        .clone()
        .and_then(|fields| serde_json::from_value(fields).ok())
        .unwrap_or_else(|| task.operator.clone())
}
