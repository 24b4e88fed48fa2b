//! Publishing scheduled task instances to RabbitMQ.
//!
//! The `scheduled → queued` update and the publish share one transaction
//! that commits only after the broker confirmed every message. A worker's
//! claim (`queued → running`) waits on the row lock until that commit, so it
//! never sees a half-dispatched try; if the commit fails the claim finds the
//! task still `scheduled`, drops the message, and the next pass publishes again.

use std::collections::BTreeMap;

use deadpool_postgres::Pool;
use gust_shared::{
    dag::TaskSpec,
    db::task_instances::{self, Dispatchable},
    message::{TaskMessage, SCHEMA_VERSION},
};

use crate::{broker::Broker, error::SchedulerError, versions::VersionCache};

/// Dispatches every scheduled task instance, `batch` per transaction; returns how many.
pub async fn dispatch_scheduled(
    pool: &Pool,
    broker: &Broker,
    versions: &VersionCache,
    batch: usize,
) -> Result<usize, SchedulerError> {
    let limit = i64::try_from(batch).unwrap_or(i64::MAX);
    let mut total = 0;
    loop {
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        let taken = task_instances::take_for_dispatch(&tx, limit).await?;
        if taken.is_empty() {
            return Ok(total);
        }
        let mut messages = Vec::with_capacity(taken.len());
        for ti in &taken {
            let dag = versions.get(&tx, ti.dag_version_id).await?;
            let Some(task) = dag.task(&ti.task_id) else {
                return Err(SchedulerError::MissingVersion(ti.dag_version_id));
            };
            messages.push(build_message(ti, task));
        }
        broker.publish(&messages).await?;
        tx.commit().await?;
        for m in &messages {
            tracing::info!(dag_id = %m.dag_id, run_id = %m.run_id, task_id = %m.task_id, try_number = m.try_number, queue = %m.queue, "task queued");
        }
        total += taken.len();
        if taken.len() < batch {
            return Ok(total);
        }
    }
}

/// The self-contained message for try `ti.next_try` of a task instance.
pub fn build_message(ti: &Dispatchable, task: &TaskSpec) -> TaskMessage {
    let mut message = TaskMessage {
        version: SCHEMA_VERSION,
        ti_id: ti.id,
        dag_id: ti.dag_id.clone(),
        run_id: ti.run_id.clone(),
        task_id: ti.task_id.clone(),
        map_index: ti.map_index,
        try_number: ti.next_try,
        logical_date: ti.logical_date,
        queue: task.queue.clone(),
        operator: task.operator.clone(),
        execution_timeout_ms: task.execution_timeout_ms,
        retry: task.retry_policy(),
        env: BTreeMap::new(),
    };
    message.env = message.context_env();
    message
}
