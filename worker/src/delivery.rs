//! Handling one delivery: parse, claim the try, run it, commit the outcome,
//! and only then ack. A delivery for a try that is not ours to run is acked
//! and dropped; one that can never run (garbage, unknown task instance) is
//! rejected without requeue so the broker dead-letters it.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use backon::{ExponentialBuilder, Retryable};
use deadpool_postgres::Pool;
use gust_shared::{
    amqp::AmqpError,
    broker::{BrokerFuture, Delivery, Publish},
    dag::OperatorSpec,
    db::{
        assets::outlets::{record_outlet_events, Producer},
        logs,
        task_instances::{
            try_end::TryOutcome,
            worker_tries::{self, Claim},
        },
        xcom, DbError,
    },
    message::TaskMessage,
    state::TaskState,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    group_commit::{Entry, GroupCommit},
    log_sink::{LogSink, Stream},
    metrics::{Delivered, Metrics},
    operators::{self, Outcome, RunLimits},
};

/// What every delivery handler needs.
pub struct Context {
    /// The database.
    pub pool: Pool,
    /// Publishes retries and sensors' next pokes to their delay queues, and what cannot run to the dead queue.
    pub publisher: Arc<dyn Publish>,
    /// Group commit of claims and successful finishes.
    pub ledger: GroupCommit<Entry>,
    /// Recorded as the task instance's hostname.
    pub hostname: String,
    /// Kill grace and similar limits.
    pub limits: RunLimits,
    /// Log bytes kept per try.
    pub max_log_bytes: usize,
    /// Task instances this worker is running now (heartbeated, and never taken over from itself).
    pub running: Arc<Mutex<HashSet<Uuid>>>,
    /// How often the worker heartbeats (and re-checks a try held elsewhere).
    pub heartbeat_interval: Duration,
    /// Silence after which a redelivered running try is taken over.
    pub takeover_after: Duration,
    /// Keys that decrypt connection secrets (`GUST__SECRETS__KEY`), to mask them in task logs.
    pub secrets: Option<Arc<gust_shared::secrets::Secrets>>,
    /// This worker's Prometheus metrics.
    pub metrics: Metrics,
}

/// Processes one delivery to the end, acking, nacking or rejecting it.
/// `stop` is cancelled when the worker's shutdown grace period is over.
pub async fn handle(ctx: &Context, delivery: Delivery, stop: CancellationToken) {
    let settle = &delivery.settle;
    let mut message = match TaskMessage::from_bytes(&delivery.body) {
        Ok(message) => message,
        Err(e) => {
            tracing::warn!(reason = %e, routing_key = %delivery.routing_key, "rejecting poison message to the dead queue");
            ctx.metrics.delivered(Delivered::DeadLettered);
            settled(settle.reject()).await;
            return;
        }
    };
    if let OperatorSpec::Custom { name, .. } = &message.operator {
        if ctx.limits.plugins.find(name).is_none() {
            let detail = ctx.limits.plugins.missing(name, &message.queue, &ctx.hostname);
            tracing::warn!(reason = %detail, "rejecting a task this worker has no operator for to the dead queue");
            ctx.metrics.delivered(Delivered::DeadLettered);
            match ctx.publisher.publish_dead(&delivery.body, "missing_operator", &detail).await {
                Ok(()) => settled(settle.ack()).await,
                // Without the reason: the broker dead-letters it as `rejected`.
                Err(_) => settled(settle.reject()).await,
            }
            return;
        }
    }
    let claiming = Instant::now();
    match claim_or_take_over(ctx, &mut message, &stop).await {
        Claimed::Yes => {}
        Claimed::Drop => {
            settled(settle.ack()).await;
            return;
        }
        Claimed::Poison => {
            settled(settle.reject()).await;
            return;
        }
        Claimed::HandBack => {
            ctx.metrics.handbacks.inc();
            settled(settle.requeue()).await;
            return;
        }
    }
    let (dag_id, run_id, task_id, try_number) =
        (&message.dag_id, &message.run_id, &message.task_id, message.try_number);
    tracing::info!(%dag_id, %run_id, %task_id, try_number, operator = message.operator.name(), "task started");
    ctx.running.lock().expect("running set").insert(message.ti_id);

    let (log, writer) = LogSink::start(ctx.pool.clone(), message.ti_id, try_number, ctx.max_log_bytes);
    // A noop logs nothing of the task's, so no secret can reach its log: none is loaded (two queries a task).
    let log = if matches!(message.operator, OperatorSpec::Noop) {
        log
    } else {
        log.with_masks(crate::log_sink::secrets_to_mask(&ctx.pool, ctx.secrets.as_deref(), &message).await)
    };
    // No one ends a try sooner than `takeover_after` after its claim (the zombie
    // threshold is longer still). A try prepared for longer, as by a worker cut
    // off from PostgreSQL, may have been ended and run elsewhere meanwhile.
    if claiming.elapsed() >= ctx.takeover_after && !still_ours(ctx, &message).await {
        drop(log);
        writer.finish().await;
        ctx.running.lock().expect("running set").remove(&message.ti_id);
        tracing::warn!(%dag_id, %run_id, %task_id, try_number, "try was ended elsewhere while this worker prepared it; not running it");
        settled(settle.ack()).await;
        return;
    }
    let started = Instant::now();
    let outcome = operators::for_spec(&message.operator).run(&message, &log, &ctx.limits, &stop).await;
    let ran_for = started.elapsed().as_secs_f64();
    if outcome.is_timeout() {
        ctx.metrics.timeouts.inc();
    }
    if outcome.interrupted {
        log.line(
            Stream::Gust,
            format!(
                "worker {} is shutting down and its grace period is over; try {try_number} is handed back to the queue",
                ctx.hostname
            ),
        )
        .await;
    }
    drop(log);
    writer.finish().await;

    if outcome.interrupted {
        let released = (|| async { worker_tries::hand_back(&ctx.pool.get().await?, message.ti_id, try_number).await })
            .retry(ExponentialBuilder::default().with_max_times(5).with_max_delay(Duration::from_secs(2)))
            .await;
        ctx.running.lock().expect("running set").remove(&message.ti_id);
        tracing::warn!(%dag_id, %run_id, %task_id, try_number, released = ?released.ok(), "task interrupted by shutdown; handed back");
        ctx.metrics.handbacks.inc();
        settled(settle.requeue()).await;
        return;
    }

    // The delivery stays unacked until the outcome is committed, however long that takes.
    let finished = (|| record_outcome(ctx, &message, &outcome))
        .retry(ExponentialBuilder::default().without_max_times().with_max_delay(Duration::from_secs(10)))
        .when(FinishError::is_transient)
        .notify(|e: &FinishError, wait| tracing::warn!(error = %e, ?wait, "recording task outcome failed; retrying"))
        .await;
    ctx.running.lock().expect("running set").remove(&message.ti_id);
    if let Ok(Some(state)) = finished {
        ctx.metrics.finished(state.as_str(), &message.queue, message.operator.name(), ran_for);
    }
    match finished {
        Ok(Some(TaskState::UpForRetry)) => {
            let delay_ms = message.retry.delay_after(try_number);
            tracing::info!(%dag_id, %run_id, %task_id, try_number, reason = ?outcome.failure_reason, delay_ms, "task failed; next try waits in the broker")
        }
        Ok(Some(TaskState::UpForReschedule)) => {
            let next_poke = outcome.next_poke.as_ref().map(|next| next.after);
            tracing::info!(%dag_id, %run_id, %task_id, try_number, ?next_poke, "sensor not satisfied yet; its next poke waits in the broker")
        }
        Ok(Some(state)) => {
            tracing::info!(%dag_id, %run_id, %task_id, try_number, %state, exit_code = ?outcome.exit_code, "task finished")
        }
        Ok(None) => {
            tracing::warn!(%dag_id, %run_id, %task_id, try_number, "try was changed by someone else while running; outcome not recorded")
        }
        // The try stops heartbeating now, so the scheduler's zombie check ends it by its retry rules.
        Err(e) => {
            tracing::error!(%dag_id, %run_id, %task_id, try_number, error = %e, "recording task outcome failed for good; leaving the try to the zombie check")
        }
    }
    settled(settle.ack()).await;
}

/// What to do with a delivery after trying to claim its try.
enum Claimed {
    /// Run it (the message's try number may have moved on after a takeover).
    Yes,
    /// Not ours to run: ack and forget.
    Drop,
    /// Can never run: reject to the dead queue.
    Poison,
    /// Shutting down: give it back to the broker.
    HandBack,
}

/// Claims the message's try. A redelivered try still `running` elsewhere
/// waits while that worker heartbeats (it may only have lost its broker
/// connection, or it is this worker's own task); once the heartbeat has
/// lapsed for `takeover_after`, the try is taken over as the next try.
async fn claim_or_take_over(ctx: &Context, message: &mut TaskMessage, stop: &CancellationToken) -> Claimed {
    let (dag_id, run_id, task_id) = (message.dag_id.clone(), message.run_id.clone(), message.task_id.clone());
    // Fast path: a committed queued try, claimed in one (group-committed) statement.
    if ctx.ledger.submit(Entry::Claim { ti_id: message.ti_id, try_number: message.try_number }).await == Some(true) {
        return claimed(&ctx.metrics, message);
    }
    loop {
        let try_number = message.try_number;
        // The database may be restarting: keep the delivery and keep trying.
        let claim = (|| async {
            let mut client = ctx.pool.get().await?;
            let tx = client.transaction().await?;
            let claim = worker_tries::claim(&tx, message.ti_id, try_number, &ctx.hostname).await?;
            tx.commit().await?;
            Ok::<_, DbError>(claim)
        })
        .retry(ExponentialBuilder::default().without_max_times().with_max_delay(Duration::from_secs(5)))
        .when(DbError::is_transient)
        .notify(|e: &DbError, wait| tracing::warn!(error = %e, ?wait, "claiming task failed; retrying"))
        .await;
        let claim = match claim {
            Ok(claim) => claim,
            Err(_) => return Claimed::HandBack,
        };
        match claim {
            Claim::Claimed => return claimed(&ctx.metrics, message),
            Claim::Missing => {
                tracing::warn!(%dag_id, %run_id, %task_id, ti_id = %message.ti_id, "task instance does not exist; rejecting message to the dead queue");
                ctx.metrics.delivered(Delivered::DeadLettered);
                return Claimed::Poison;
            }
            Claim::NotClaimable { state, try_number: current } => {
                tracing::info!(%dag_id, %run_id, %task_id, try_number, current_try = current, %state, "dropping delivery: this try is not queued");
                ctx.metrics.delivered(if current == try_number { Delivered::Duplicate } else { Delivered::Stale });
                return Claimed::Drop;
            }
            Claim::Held { try_number: running_try, hostname, heartbeat_age } => {
                message.try_number = running_try;
                let try_number = running_try;
                let ours = ctx.running.lock().expect("running set").contains(&message.ti_id);
                if !ours && heartbeat_age >= ctx.takeover_after {
                    let previous = hostname.unwrap_or_else(|| "an unknown worker".into());
                    let reason = format!(
                        "worker {previous} stopped heartbeating {:.1}s ago while running try {try_number}; {} continues the task as try {}",
                        heartbeat_age.as_secs_f64(),
                        ctx.hostname,
                        try_number + 1
                    );
                    match take_over(ctx, message, &reason).await {
                        Ok(Some(new_try)) => {
                            tracing::warn!(%dag_id, %run_id, %task_id, try_number, new_try, %previous, "took over a try from a dead worker");
                            message.try_number = new_try;
                            message.env = message.context_env();
                            ctx.metrics.delivered(Delivered::Takeover);
                            return Claimed::Yes;
                        }
                        Ok(None) => continue,
                        Err(e) => {
                            tracing::warn!(error = %e, "taking over a try failed; retrying");
                        }
                    }
                }
                tracing::info!(%dag_id, %run_id, %task_id, try_number, heartbeat_age = ?heartbeat_age, "redelivered try is still running elsewhere; waiting for it");
                tokio::select! {
                    _ = stop.cancelled() => return Claimed::HandBack,
                    _ = tokio::time::sleep(ctx.heartbeat_interval) => {}
                }
            }
        }
    }
}

/// Counts a claimed delivery and, for a try the scheduler published, how long it waited.
fn claimed(metrics: &Metrics, message: &TaskMessage) -> Claimed {
    metrics.delivered(Delivered::Claimed);
    if let Some(queued_at) = message.queued_at {
        let waited = (chrono::Utc::now() - queued_at).num_microseconds().unwrap_or(i64::MAX).max(0);
        metrics.waited(&message.queue, waited as f64 / 1e6);
    }
    Claimed::Yes
}

/// Whether the message's try is still running on this worker, asked again
/// while PostgreSQL does not answer; `true` when it cannot be told.
async fn still_ours(ctx: &Context, message: &TaskMessage) -> bool {
    let (ti_id, try_number, hostname) = (message.ti_id, message.try_number, ctx.hostname.as_str());
    let check = (|| async { worker_tries::still_running_on(&ctx.pool.get().await?, ti_id, try_number, hostname).await })
        .retry(ExponentialBuilder::default().without_max_times().with_max_delay(Duration::from_secs(5)))
        .when(DbError::is_transient)
        .notify(|e: &DbError, wait| tracing::warn!(error = %e, ?wait, "checking that a claimed try is still ours failed; retrying"))
        .await;
    check.unwrap_or_else(|e| {
        tracing::warn!(error = %e, %ti_id, try_number, "cannot tell whether a claimed try is still ours; running it");
        true
    })
}

async fn take_over(ctx: &Context, message: &TaskMessage, reason: &str) -> Result<Option<i32>, DbError> {
    let mut client = ctx.pool.get().await?;
    let tx = client.transaction().await?;
    let new_try = worker_tries::take_over(&tx, message.ti_id, message.try_number, &ctx.hostname, reason).await?;
    if new_try.is_some() {
        let line = format!("gust: {reason}");
        logs::append(&tx, message.ti_id, message.try_number, &[(chrono::Utc::now(), "gust", line.as_str())]).await?;
    }
    tx.commit().await?;
    Ok(new_try)
}

/// Why recording an outcome failed (and will be tried again).
#[derive(Debug, thiserror::Error)]
enum FinishError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Amqp(#[from] AmqpError),
}

impl FinishError {
    /// Whether trying again can help (a restarting database or broker).
    fn is_transient(&self) -> bool {
        match self {
            FinishError::Db(e) => e.is_transient(),
            FinishError::Amqp(_) => true,
        }
    }
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
async fn record_outcome(
    ctx: &Context,
    message: &TaskMessage,
    outcome: &Outcome,
) -> Result<Option<TaskState>, FinishError> {
    let delay_ms = message.retry.delay_after(message.try_number);
    let try_outcome = TryOutcome {
        state: outcome.state,
        exit_code: outcome.exit_code,
        failure_reason: outcome.failure_reason.as_deref(),
        retry_delay_ms: delay_ms,
        retryable: outcome.retryable,
    };
    let plain_success = outcome.state == TaskState::Success && outcome.xcom.is_none() && message.outlets.is_empty();
    if plain_success {
        // Nothing else has to be atomic with a success: group-commit it with other tasks'.
        // No pooled connection is held while waiting: the batch needs one.
        match ctx
            .ledger
            .submit(Entry::Success {
                ti_id: message.ti_id,
                try_number: message.try_number,
                exit_code: outcome.exit_code,
            })
            .await
        {
            Some(true) => return Ok(Some(TaskState::Success)),
            Some(false) => return Ok(None),
            None => {}
        }
    }
    let mut client = ctx.pool.get().await?;
    if let Some(next_poke) = &outcome.next_poke {
        return reschedule(ctx, &mut client, message, next_poke).await;
    }
    if plain_success {
        return Ok(worker_tries::finish(&client, message.ti_id, message.try_number, &try_outcome).await?);
    }
    let tx = client.transaction().await?;
    let recorded = worker_tries::finish(&tx, message.ti_id, message.try_number, &try_outcome).await?;
    if recorded == Some(TaskState::Success) && !message.outlets.is_empty() {
        // Before the XCom is replaced: an `asset_extra` XCom the task wrote becomes the events' extra.
        let producer = Producer {
            ti_id: message.ti_id,
            dag_id: &message.dag_id,
            run_id: &message.run_id,
            task_id: &message.task_id,
            map_index: message.map_index,
        };
        record_outlet_events(&tx, &producer, &message.outlets).await?;
    }
    if let (Some(TaskState::Success), Some(value)) = (recorded, &outcome.xcom) {
        xcom::replace(&tx, message.ti_id, message.try_number, &[(xcom::RETURN_VALUE_KEY, value)]).await?;
    }
    if recorded == Some(TaskState::UpForRetry) {
        let mut next = message.clone();
        next.try_number += 1;
        next.first_poke_at = None;
        next.queued_at = None;
        next.env = next.context_env();
        ctx.publisher.publish_delayed(&next, delay_ms).await?;
    }
    tx.commit().await?;
    Ok(recorded)
}

/// Parks a sensor's try `up_for_reschedule` and publishes the same try, with
/// its first poke's time, to the delay queue of its next poke, in one
/// transaction: the poke exists in the broker before the state says it waits.
async fn reschedule(
    ctx: &Context,
    client: &mut deadpool_postgres::Object,
    message: &TaskMessage,
    next_poke: &operators::NextPoke,
) -> Result<Option<TaskState>, FinishError> {
    let delay_ms = u64::try_from(next_poke.after.as_millis()).unwrap_or(u64::MAX);
    let tx = client.transaction().await?;
    if !worker_tries::reschedule(&tx, message.ti_id, message.try_number, delay_ms).await? {
        return Ok(None);
    }
    let mut next = message.clone();
    next.first_poke_at = Some(next_poke.first_poke_at);
    next.queued_at = None;
    ctx.publisher.publish_delayed(&next, delay_ms).await?;
    tx.commit().await?;
    Ok(Some(TaskState::UpForReschedule))
}

async fn settled(settling: BrokerFuture<'_>) {
    if let Err(e) = settling.await {
        tracing::warn!(error = %e, "could not settle delivery with the broker; it will be redelivered");
    }
}
