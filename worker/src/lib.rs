//! gust-worker: consumes task messages from its queues, runs each try,
//! records the outcome in PostgreSQL and acks only after that commit.

mod delivery;
pub mod error;
mod log_sink;
mod operators;

use std::{future::Future, sync::Arc};

use futures_util::StreamExt;
use gust_shared::{
    amqp::{self, TaskPublisher, Topology},
    db,
    settings::Settings,
};
use lapin::{
    options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions},
    types::FieldTable,
};
use tokio::{sync::Semaphore, task::JoinSet};

pub use error::WorkerError;

use crate::{delivery::Context, operators::RunLimits};

/// Runs the worker until `shutdown` resolves, then stops consuming and
/// waits for the tries it is running to finish and be acked.
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> Result<(), WorkerError> {
    let pool = db::connect(&settings.database.url, settings.database.pool_size).await?;
    let connection = amqp::connect(&settings.amqp.url, "gust-worker").await?;
    let channel = connection.create_channel().await?;
    let concurrency = settings.worker.concurrency.max(1);
    channel
        .basic_qos(u16::try_from(concurrency).unwrap_or(u16::MAX), BasicQosOptions { global: false })
        .await?;
    let topology = Topology::from_settings(&settings.amqp);
    let publisher = TaskPublisher::new(&connection, topology.clone()).await?;
    let hostname = settings.worker_name();

    let mut consumers = Vec::new();
    let mut tags = Vec::new();
    for queue in &settings.worker.queues {
        topology.declare_work_queue(&channel, queue).await.map_err(WorkerError::from)?;
        let tag = format!("{hostname}/{queue}");
        let consumer = channel
            .basic_consume(topology.work_queue(queue).into(), tag.as_str().into(), BasicConsumeOptions::default(), FieldTable::default())
            .await?;
        consumers.push(consumer);
        tags.push(tag);
    }
    let mut deliveries = futures_util::stream::select_all(consumers);
    let ctx = Arc::new(Context {
        pool,
        publisher,
        hostname: hostname.clone(),
        limits: RunLimits { kill_grace: settings.worker.kill_grace },
        max_log_bytes: settings.worker.max_log_bytes,
    });
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut running = JoinSet::new();
    tracing::info!(%hostname, queues = ?settings.worker.queues, concurrency, namespace = %settings.amqp.namespace, "worker started");

    tokio::pin!(shutdown);
    let result = loop {
        while running.try_join_next().is_some() {}
        let permit = tokio::select! {
            _ = &mut shutdown => break Ok(()),
            permit = permits.clone().acquire_owned() => permit.expect("semaphore is never closed"),
        };
        let delivery = tokio::select! {
            _ = &mut shutdown => break Ok(()),
            next = deliveries.next() => next,
        };
        match delivery {
            Some(Ok(delivery)) => {
                let ctx = ctx.clone();
                running.spawn(async move {
                    delivery::handle(&ctx, delivery).await;
                    drop(permit);
                });
            }
            Some(Err(e)) => break Err(WorkerError::from(e)),
            None => break Err(WorkerError::ConsumerClosed(settings.worker.queues.join(","))),
        }
    };

    tracing::info!(running = running.len(), "worker stopping: no new tasks; waiting for running ones");
    for tag in &tags {
        let _ = channel.basic_cancel(tag.as_str().into(), BasicCancelOptions::default()).await;
    }
    while running.join_next().await.is_some() {}
    let _ = channel.close(200, "worker stopped".into()).await;
    let _ = connection.close(200, "worker stopped".into()).await;
    tracing::info!("worker stopped");
    result
}
