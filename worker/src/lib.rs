//! gust-worker: consumes task messages from its queues, runs each try,
//! records the outcome in PostgreSQL and acks only after that commit.
//!
//! The worker survives broker and database restarts: it reconnects to
//! RabbitMQ with backoff (running tasks carry on; their deliveries come back
//! and are matched to the running try), and it keeps retrying a commit while
//! PostgreSQL is away, holding the delivery unacked meanwhile.

mod delivery;
pub mod error;
mod group_commit;
mod heartbeat;
mod log_sink;
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
    db,
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

use crate::{delivery::Context, operators::RunLimits};

/// Why one broker session ended.
enum SessionEnd {
    /// Shutdown was requested.
    Shutdown,
    /// The connection or a consumer was lost.
    Lost(WorkerError),
}

/// Runs the worker until `shutdown` resolves, then stops consuming, gives
/// running tries `shutdown_grace` to finish (and be acked), and hands the
/// rest back to the broker.
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> Result<(), WorkerError> {
    let pool = db::connect(&settings.database.url, settings.database.pool_size).await?;
    let hostname = settings.worker_name();
    let topology = Topology::from_settings(&settings.amqp);
    let running = Arc::new(Mutex::new(HashSet::new()));
    let hard_stop = CancellationToken::new();
    let plugins = Arc::new(operators::Plugins::new(settings.worker.plugin_path.clone()));
    let advertised = heartbeat::Advertised {
        queues: settings.worker.queues.clone(),
        operators: operators::advertised(plugins.describe_all().await),
    };
    let beats = heartbeat::spawn(
        pool.clone(),
        hostname.clone(),
        running.clone(),
        settings.worker.heartbeat_interval,
        advertised,
    );

    // The first connection must work: a misconfigured URL is reported, not retried forever.
    let mut connection = amqp::connect(&settings.amqp.url, "gust-worker").await?;
    let permits = Arc::new(Semaphore::new(settings.worker.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    tracing::info!(%hostname, queues = ?settings.worker.queues, concurrency = settings.worker.concurrency, prefetch = settings.worker.prefetch_limit(), namespace = %settings.amqp.namespace, "worker started");

    let mut backoff = Duration::from_millis(200);
    loop {
        let ctx = match session_context(&connection, &topology, &pool, &hostname, &running, &plugins, &settings).await {
            Ok(ctx) => Some(ctx),
            Err(e) => {
                tracing::warn!(error = %e, "setting up the broker session failed");
                None
            }
        };
        let end = match ctx {
            Some((ctx, channel)) => {
                backoff = Duration::from_millis(200);
                consume(&settings, &channel, ctx, &permits, &mut tasks, &hard_stop, &mut shutdown).await
            }
            None => SessionEnd::Lost(WorkerError::ConsumerClosed(settings.worker.queues.join(","))),
        };
        match end {
            SessionEnd::Shutdown => break,
            SessionEnd::Lost(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, running = tasks.len(), "lost RabbitMQ; reconnecting (running tasks carry on)");
                loop {
                    tokio::select! {
                        _ = &mut shutdown => return finish(tasks, &hard_stop, &settings, &pool, &hostname, beats).await,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    match amqp::connect(&settings.amqp.url, "gust-worker").await {
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
    let result = finish(tasks, &hard_stop, &settings, &pool, &hostname, beats).await;
    let _ = connection.close(200, "worker stopped".into()).await;
    result
}

/// Opens a channel, declares the worker's queues and builds the per-session context.
async fn session_context(
    connection: &Connection,
    topology: &Topology,
    pool: &deadpool_postgres::Pool,
    hostname: &str,
    running: &Arc<Mutex<HashSet<uuid::Uuid>>>,
    plugins: &Arc<operators::Plugins>,
    settings: &Settings,
) -> Result<(Arc<Context>, Channel), WorkerError> {
    let channel = connection.create_channel().await?;
    let prefetch = u16::try_from(settings.worker.prefetch_limit().max(1)).unwrap_or(u16::MAX);
    channel.basic_qos(prefetch, BasicQosOptions { global: false }).await?;
    for queue in &settings.worker.queues {
        topology.declare_work_queue(&channel, queue).await?;
    }
    let publisher = TaskPublisher::new(connection, topology.clone()).await?;
    let ctx = Arc::new(Context {
        pool: pool.clone(),
        publisher,
        ledger: group_commit::ledger(pool.clone(), hostname.to_string()),
        hostname: hostname.to_string(),
        limits: RunLimits {
            kill_grace: settings.worker.kill_grace,
            max_xcom_bytes: settings.worker.max_xcom_bytes,
            plugins: plugins.clone(),
            connections: Arc::new(operators::Connections::new(pool.clone(), settings.secrets.secrets().ok().flatten())),
            gust_db: pool.clone(),
        },
        max_log_bytes: settings.worker.max_log_bytes,
        running: running.clone(),
        heartbeat_interval: settings.worker.heartbeat_interval,
        takeover_after: settings.worker.takeover_after,
        secrets: settings.secrets.secrets().ok().flatten().map(Arc::new),
    });
    Ok((ctx, channel))
}

/// Consumes until shutdown or until the broker session is lost.
async fn consume(
    settings: &Settings,
    channel: &Channel,
    ctx: Arc<Context>,
    permits: &Arc<Semaphore>,
    tasks: &mut JoinSet<()>,
    hard_stop: &CancellationToken,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
) -> SessionEnd {
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
        let permit = tokio::select! {
            _ = &mut *shutdown => break SessionEnd::Shutdown,
            permit = permits.clone().acquire_owned() => permit.expect("semaphore is never closed"),
        };
        let delivery = tokio::select! {
            _ = &mut *shutdown => break SessionEnd::Shutdown,
            next = deliveries.next() => next,
        };
        match delivery {
            Some(Ok(delivery)) => {
                let (ctx, stop) = (ctx.clone(), hard_stop.clone());
                tasks.spawn(async move {
                    delivery::handle(&ctx, delivery, stop).await;
                    drop(permit);
                });
            }
            Some(Err(e)) => break SessionEnd::Lost(e.into()),
            None => break SessionEnd::Lost(WorkerError::ConsumerClosed(settings.worker.queues.join(","))),
        }
    };
    if matches!(end, SessionEnd::Shutdown) {
        for tag in &tags {
            let _ = channel.basic_cancel(tag.as_str().into(), BasicCancelOptions::default()).await;
        }
    }
    end
}

/// Graceful stop: running tries get the grace period, then are interrupted and handed back.
async fn finish(
    mut tasks: JoinSet<()>,
    hard_stop: &CancellationToken,
    settings: &Settings,
    pool: &deadpool_postgres::Pool,
    hostname: &str,
    beats: tokio::task::JoinHandle<()>,
) -> Result<(), WorkerError> {
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
        let _ = db::heartbeats::stopped(&client, hostname).await;
    }
    tracing::info!("worker stopped");
    Ok(())
}
