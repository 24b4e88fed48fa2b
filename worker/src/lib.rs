//! gust-worker: consumes task messages from its queues, runs each try,
//! records the outcome in PostgreSQL and acks only after that commit.
//!
//! The worker survives broker and database restarts: it reconnects to
//! RabbitMQ with backoff (running tasks carry on; their deliveries come back
//! and are matched to the running try), and it keeps retrying a commit while
//! PostgreSQL is away, holding the delivery unacked meanwhile.

mod current_publisher;
mod delivery;
pub mod error;
mod group_commit;
mod heartbeat;
mod log_sink;
pub mod metrics;
mod operators;

use std::{
    collections::HashSet,
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::StreamExt;
use gust_shared::{
    amqp::{self, TaskPublisher, Topology},
    broker::{Delivery, LocalBroker, Publish},
    db,
    health::{Health, OpsServer},
    settings::Settings,
};
use lapin::{
    options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions},
    types::FieldTable,
    Channel, Connection,
};
use tokio::{sync::Semaphore, task::JoinSet};
use tokio_util::sync::CancellationToken;

pub use error::WorkerError;

use crate::{current_publisher::CurrentPublisher, delivery::Context, metrics::Metrics, operators::RunLimits};

/// How long a stopping worker waits for RabbitMQ to confirm the connection's close.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Why one broker session ended.
enum SessionEnd {
    /// Shutdown was requested.
    Shutdown,
    /// The connection or a consumer was lost.
    Lost(WorkerError),
}

/// What a worker keeps across broker sessions.
struct Worker {
    settings: Settings,
    pool: deadpool_postgres::Pool,
    hostname: String,
    running: Arc<Mutex<HashSet<uuid::Uuid>>>,
    hard_stop: CancellationToken,
    plugins: Arc<operators::Plugins>,
    beats: tokio::task::JoinHandle<()>,
    permits: Arc<Semaphore>,
    /// Fed by the heartbeat task and the broker session loop; served by the ops server when one is configured.
    health: Health,
    _ops: Option<OpsServer>,
    /// Served at `/metrics` on the ops server.
    metrics: Metrics,
    /// What every delivery publishes through: the live session's publisher.
    publisher: Arc<CurrentPublisher>,
}

impl Worker {
    /// Connects to the database, finds the plugins and starts heartbeating.
    async fn start(settings: Settings) -> Result<Worker, WorkerError> {
        let pool = db::connect(&settings.database.url, settings.database.pool_size).await?;
        let hostname = settings.worker_name();
        let running = Arc::new(Mutex::new(HashSet::new()));
        let plugins = Arc::new(operators::Plugins::new(settings.worker.plugin_path.clone()));
        let advertised = heartbeat::Advertised {
            queues: settings.worker.queues.clone(),
            operators: operators::advertised(plugins.describe_all().await),
        };
        let health = Health::new("worker", settings.worker.heartbeat_interval).needing_broker();
        let (metrics, exposition) =
            Metrics::with_exposition(settings.worker.concurrency, settings.metrics.token.clone());
        let ops = OpsServer::start(settings.ops_bind(), health.clone(), exposition).await?;
        let beats = heartbeat::spawn(
            pool.clone(),
            hostname.clone(),
            running.clone(),
            settings.worker.heartbeat_interval,
            advertised,
            health.clone(),
        );
        let permits = Arc::new(Semaphore::new(settings.worker.concurrency.max(1)));
        let hard_stop = CancellationToken::new();
        Ok(Worker {
            settings,
            pool,
            hostname,
            running,
            hard_stop,
            plugins,
            beats,
            permits,
            health,
            _ops: ops,
            metrics,
            publisher: Arc::new(CurrentPublisher::default()),
        })
    }

    /// The context of every delivery handled from now on, publishing through
    /// `publisher` (and, once it is replaced, through the next session's).
    fn context(&self, publisher: Arc<dyn Publish>) -> Arc<Context> {
        self.publisher.replace(publisher);
        let settings = &self.settings;
        Arc::new(Context {
            pool: self.pool.clone(),
            publisher: self.publisher.clone(),
            ledger: group_commit::ledger(self.pool.clone(), self.hostname.clone(), self.metrics.clone()),
            hostname: self.hostname.clone(),
            limits: RunLimits {
                kill_grace: settings.worker.kill_grace,
                max_xcom_bytes: settings.worker.max_xcom_bytes,
                plugins: self.plugins.clone(),
                connections: Arc::new(operators::Connections::new(
                    self.pool.clone(),
                    settings.secrets.secrets().ok().flatten(),
                )),
                gust_db: self.pool.clone(),
            },
            max_log_bytes: settings.worker.max_log_bytes,
            running: self.running.clone(),
            heartbeat_interval: settings.worker.heartbeat_interval,
            takeover_after: settings.worker.takeover_after,
            secrets: settings.secrets.secrets().ok().flatten().map(Arc::new),
            metrics: self.metrics.clone(),
        })
    }

    /// Handles `delivery` in its own task, holding `permit` (a concurrency slot) until it is settled.
    fn spawn(
        &self,
        tasks: &mut JoinSet<()>,
        ctx: &Arc<Context>,
        delivery: Delivery,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) {
        let (ctx, stop) = (ctx.clone(), self.hard_stop.clone());
        let slot = self.metrics.slot_taken();
        tasks.spawn(async move {
            delivery::handle(&ctx, delivery, stop).await;
            drop(slot);
            drop(permit);
        });
    }
}

/// How one try run by [`run_one`] ended.
#[derive(Debug, Clone, PartialEq)]
pub struct TryResult {
    /// `success`, `failed`, `skipped`, or `up_for_reschedule` for a rescheduled sensor that must wait.
    pub state: gust_shared::state::TaskState,
    /// Why it failed, for people.
    pub failure_reason: Option<String>,
    /// Its `return_value` XCom.
    pub xcom: Option<serde_json::Value>,
}

/// Runs one try of `message` with the worker's operators, printing its log
/// to standard output and recording nothing (`gust tasks test`). The
/// database in `settings` is used only where the operator reads it
/// (connections from the table, `external_task_sensor`); it need not answer.
pub async fn run_one(settings: &Settings, message: &gust_shared::message::TaskMessage) -> TryResult {
    let plugins = Arc::new(operators::Plugins::new(settings.worker.plugin_path.clone()));
    let pool = db::lazy_pool(&settings.database.url, 2);
    let limits = RunLimits {
        kill_grace: settings.worker.kill_grace,
        max_xcom_bytes: settings.worker.max_xcom_bytes,
        plugins,
        connections: Arc::new(operators::Connections::new(pool.clone(), settings.secrets.secrets().ok().flatten())),
        gust_db: pool,
    };
    let (log, writer) = log_sink::LogSink::printing();
    let stop = CancellationToken::new();
    let outcome = operators::for_spec(&message.operator).run(message, &log, &limits, &stop).await;
    drop(log);
    writer.finish().await;
    TryResult { state: outcome.state, failure_reason: outcome.failure_reason, xcom: outcome.xcom }
}

/// Runs a worker on an in-process [`LocalBroker`] instead of RabbitMQ (`gust dags test`):
/// the same delivery handling, operators and database statements; every queue is this worker's.
pub async fn run_local(
    settings: Settings,
    broker: LocalBroker,
    shutdown: impl Future<Output = ()>,
) -> Result<(), WorkerError> {
    // In process: no ops server, whatever the environment says.
    let settings = settings.without_ops_server();
    let worker = Worker::start(settings).await?;
    let ctx = worker.context(Arc::new(broker.clone()));
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while tasks.try_join_next().is_some() {}
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = worker.permits.clone().acquire_owned() => permit.expect("semaphore is never closed"),
        };
        let delivery = tokio::select! {
            _ = &mut shutdown => break,
            next = broker.next() => next,
        };
        match delivery {
            Some(delivery) => worker.spawn(&mut tasks, &ctx, delivery, permit),
            None => break,
        }
    }
    finish(tasks, worker).await
}

/// Runs the worker until `shutdown` resolves, then stops consuming, gives
/// running tries `shutdown_grace` to finish (and be acked), and hands the
/// rest back to the broker.
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> Result<(), WorkerError> {
    let worker = Worker::start(settings).await?;
    let settings = &worker.settings;
    let topology = Topology::from_settings(&settings.amqp);
    let hostname = &worker.hostname;

    // The first connection must work: a misconfigured URL is reported, not retried forever.
    let mut connection = amqp::connect_to(&settings.amqp, "gust-worker").await?;
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    tracing::info!(%hostname, queues = ?settings.worker.queues, concurrency = settings.worker.concurrency, prefetch = settings.worker.prefetch_limit(), namespace = %settings.amqp.namespace, "worker started");

    let mut backoff = Duration::from_millis(200);
    loop {
        let ctx = match session_context(&worker, &connection, &topology).await {
            Ok(ctx) => Some(ctx),
            Err(e) => {
                tracing::warn!(error = %e, "setting up the broker session failed");
                None
            }
        };
        worker.health.broker(ctx.is_some());
        let end = match ctx {
            Some((ctx, channel)) => {
                backoff = Duration::from_millis(200);
                consume(&worker, &channel, ctx, &mut tasks, &mut shutdown).await
            }
            None => SessionEnd::Lost(WorkerError::ConsumerClosed(settings.worker.queues.join(","))),
        };
        match end {
            SessionEnd::Shutdown => break,
            SessionEnd::Lost(e) => {
                worker.health.broker(false);
                tracing::warn!(error = %e, retry_in = ?backoff, running = tasks.len(), "lost RabbitMQ; reconnecting (running tasks carry on)");
                loop {
                    tokio::select! {
                        _ = &mut shutdown => return finish(tasks, worker).await,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    match amqp::connect_to(&settings.amqp, "gust-worker").await {
                        Ok(fresh) => {
                            connection = fresh;
                            tracing::info!("reconnected to RabbitMQ");
                            break;
                        }
                        Err(e) => tracing::warn!(error = %e, retry_in = ?backoff, "reconnecting to RabbitMQ failed"),
                    }
                }
            }
        }
    }
    let result = finish(tasks, worker).await;
    // Every delivery is settled by now; a broker that does not answer the close must not hold the exit.
    let _ = tokio::time::timeout(CLOSE_WAIT, connection.close(200, "worker stopped".into())).await;
    result
}

/// Opens a channel, declares the worker's queues and builds the per-session context.
async fn session_context(
    worker: &Worker,
    connection: &Connection,
    topology: &Topology,
) -> Result<(Arc<Context>, Channel), WorkerError> {
    let channel = connection.create_channel().await?;
    let prefetch = u16::try_from(worker.settings.worker.prefetch_limit().max(1)).unwrap_or(u16::MAX);
    channel.basic_qos(prefetch, BasicQosOptions { global: false }).await?;
    for queue in &worker.settings.worker.queues {
        topology.declare_work_queue(&channel, queue).await?;
    }
    let publisher = TaskPublisher::new(connection, topology.clone()).await?;
    Ok((worker.context(Arc::new(publisher)), channel))
}

/// Consumes until shutdown or until the broker session is lost.
async fn consume(
    worker: &Worker,
    channel: &Channel,
    ctx: Arc<Context>,
    tasks: &mut JoinSet<()>,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
) -> SessionEnd {
    let settings = &worker.settings;
    let topology = Topology::from_settings(&settings.amqp);
    let mut consumers = Vec::new();
    let mut tags = Vec::new();
    for queue in &settings.worker.queues {
        let tag = format!("{}/{queue}", ctx.hostname);
        let consumer = channel
            .basic_consume(
                topology.work_queue(queue).into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await;
        match consumer {
            Ok(consumer) => consumers.push(consumer),
            Err(e) => return SessionEnd::Lost(e.into()),
        }
        tags.push(tag);
    }
    let mut deliveries = futures_util::stream::select_all(consumers);
    let end = loop {
        while tasks.try_join_next().is_some() {}
        // The stream first, then a slot: a worker whose every slot is busy still
        // sees its connection die at once (and is unready), not when a task ends.
        // The broker sends no more than the prefetch (concurrency × multiplier): with
        // the default multiplier of 1 a delivery waits for a slot only while the
        // handler that acked the previous one is returning it.
        let delivery = tokio::select! {
            _ = &mut *shutdown => break SessionEnd::Shutdown,
            next = deliveries.next() => next,
        };
        let delivery = match delivery {
            Some(Ok(delivery)) => delivery,
            Some(Err(e)) => break SessionEnd::Lost(e.into()),
            None => break SessionEnd::Lost(WorkerError::ConsumerClosed(settings.worker.queues.join(","))),
        };
        // A delivery dropped unsettled here goes back to the queue when the connection closes.
        let permit = tokio::select! {
            _ = &mut *shutdown => break SessionEnd::Shutdown,
            permit = worker.permits.clone().acquire_owned() => permit.expect("semaphore is never closed"),
        };
        worker.spawn(tasks, &ctx, delivery.into(), permit);
    };
    if matches!(end, SessionEnd::Shutdown) {
        for tag in &tags {
            let _ = channel.basic_cancel(tag.as_str().into(), BasicCancelOptions::default()).await;
        }
    }
    end
}

/// Graceful stop: running tries get the grace period, then are interrupted and handed back.
async fn finish(mut tasks: JoinSet<()>, worker: Worker) -> Result<(), WorkerError> {
    let Worker { settings, pool, hostname, hard_stop, beats, .. } = worker;
    let grace = settings.worker.shutdown_grace;
    tracing::info!(running = tasks.len(), ?grace, "worker stopping: no new tasks; waiting for running ones");
    let drained = tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(running = tasks.len(), "grace period over; interrupting running tasks and handing them back");
        hard_stop.cancel();
        while tasks.join_next().await.is_some() {}
    }
    beats.abort();
    if let Ok(client) = pool.get().await {
        let _ = db::heartbeats::stopped(&client, &hostname).await;
    }
    tracing::info!("worker stopped");
    Ok(())
}
