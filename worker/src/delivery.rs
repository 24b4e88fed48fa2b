//! Handling one delivery: parse, claim the try, run it, commit the outcome,
//! and only then ack. A delivery for a try that is not ours to run is acked
//! and dropped; one that can never run (garbage, unknown task instance) is
//! rejected without requeue so the broker dead-letters it.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use deadpool_postgres::Pool;
use gust_shared::{
    amqp::{AmqpError, TaskPublisher},
    db::{
        task_instances::{self, Claim, TryOutcome},
        DbError,
    },
    message::TaskMessage,
    state::TaskState,
};
use lapin::{
    message::Delivery,
    options::{BasicAckOptions, BasicNackOptions, BasicRejectOptions},
};

use crate::{
    log_sink::LogSink,
    operators::{self, Outcome, RunLimits},
};

/// What every delivery handler needs.
pub struct Context {
    /// The database.
    pub pool: Pool,
    /// Publishes retries to their delay queues.
    pub publisher: TaskPublisher,
    /// Recorded as the task instance's hostname.
    pub hostname: String,
    /// Kill grace and similar limits.
    pub limits: RunLimits,
    /// Log bytes kept per try.
    pub max_log_bytes: usize,
}

/// Processes one delivery to the end, acking, nacking or rejecting it.
pub async fn handle(ctx: &Context, delivery: Delivery) {
    let message = match TaskMessage::from_bytes(&delivery.data) {
        Ok(message) => message,
        Err(e) => {
            tracing::warn!(reason = %e, routing_key = %delivery.routing_key, "rejecting poison message to the dead queue");
            settle(delivery.acker.reject(BasicRejectOptions { requeue: false }).await);
            return;
        }
    };
    let (dag_id, run_id, task_id, try_number) = (&message.dag_id, &message.run_id, &message.task_id, message.try_number);

    let claim = (|| async {
        let mut client = ctx.pool.get().await?;
        let tx = client.transaction().await?;
        let claim = task_instances::claim(&tx, message.ti_id, try_number, &ctx.hostname).await?;
        tx.commit().await?;
        Ok::<_, DbError>(claim)
    })
        .retry(ExponentialBuilder::default().with_max_times(5).with_max_delay(Duration::from_secs(2)))
        .notify(|e: &DbError, wait| tracing::warn!(error = %e, ?wait, "claiming task failed; retrying"))
        .await;
    match claim {
        Err(e) => {
            tracing::error!(%dag_id, %run_id, %task_id, try_number, error = %e, "cannot claim task; returning it to the queue");
            settle(delivery.acker.nack(BasicNackOptions { requeue: true, multiple: false }).await);
            return;
        }
        Ok(Claim::Missing) => {
            tracing::warn!(%dag_id, %run_id, %task_id, ti_id = %message.ti_id, "task instance does not exist; rejecting message to the dead queue");
            settle(delivery.acker.reject(BasicRejectOptions { requeue: false }).await);
            return;
        }
        Ok(Claim::NotClaimable { state, try_number: current }) => {
            tracing::info!(%dag_id, %run_id, %task_id, try_number, current_try = current, %state, "dropping delivery: this try is not queued");
            settle(delivery.acker.ack(BasicAckOptions::default()).await);
            return;
        }
        Ok(Claim::Claimed) => {}
    }
    tracing::info!(%dag_id, %run_id, %task_id, try_number, operator = message.operator.name(), "task started");

    let (log, writer) = LogSink::start(ctx.pool.clone(), message.ti_id, try_number, ctx.max_log_bytes);
    let outcome = operators::for_spec(&message.operator).run(&message, &log, &ctx.limits).await;
    drop(log);
    writer.finish().await;

    // The delivery stays unacked until the outcome is committed, however long that takes.
    let finished = (|| record_outcome(ctx, &message, &outcome))
        .retry(ExponentialBuilder::default().without_max_times().with_max_delay(Duration::from_secs(10)))
        .notify(|e: &FinishError, wait| tracing::warn!(error = %e, ?wait, "recording task outcome failed; retrying"))
        .await;
    match finished {
        Ok(Some(TaskState::UpForRetry)) => {
            let delay_ms = message.retry.delay_after(try_number);
            tracing::info!(%dag_id, %run_id, %task_id, try_number, reason = ?outcome.failure_reason, delay_ms, "task failed; next try waits in the broker")
        }
        Ok(Some(state)) => {
            tracing::info!(%dag_id, %run_id, %task_id, try_number, %state, exit_code = ?outcome.exit_code, "task finished")
        }
        Ok(None) => tracing::warn!(%dag_id, %run_id, %task_id, try_number, "try was changed by someone else while running; outcome not recorded"),
        Err(e) => tracing::error!(error = %e, "recording task outcome failed"),
    }
    settle(delivery.acker.ack(BasicAckOptions::default()).await);
}

/// Why recording an outcome failed (and will be tried again).
#[derive(Debug, thiserror::Error)]
enum FinishError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Amqp(#[from] AmqpError),
}

impl From<tokio_postgres::Error> for FinishError {
    fn from(e: tokio_postgres::Error) -> Self {
        FinishError::Db(e.into())
    }
}

impl From<deadpool_postgres::PoolError> for FinishError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        FinishError::Db(e.into())
    }
}

/// Commits the try's outcome. When the database turns a failure into
/// `up_for_retry`, the next try is published to its delay queue inside the
/// same transaction, so the retry exists in the broker before the state says it does.
async fn record_outcome(ctx: &Context, message: &TaskMessage, outcome: &Outcome) -> Result<Option<TaskState>, FinishError> {
    let delay_ms = message.retry.delay_after(message.try_number);
    let mut client = ctx.pool.get().await?;
    let tx = client.transaction().await?;
    let try_outcome = TryOutcome {
        state: outcome.state,
        exit_code: outcome.exit_code,
        failure_reason: outcome.failure_reason.as_deref(),
        retry_delay_ms: delay_ms,
        retryable: true,
    };
    let recorded = task_instances::finish(&tx, message.ti_id, message.try_number, &try_outcome).await?;
    if recorded == Some(TaskState::UpForRetry) {
        let mut next = message.clone();
        next.try_number += 1;
        next.env = next.context_env();
        ctx.publisher.publish_delayed(&next, delay_ms).await?;
    }
    tx.commit().await?;
    Ok(recorded)
}

fn settle(result: Result<bool, lapin::Error>) {
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not settle delivery with RabbitMQ; it will be redelivered");
    }
}
