//! Raw: the floors under gust, without gust.
//!
//! (a) RabbitMQ: persistent messages through a fresh durable quorum queue,
//! published with confirms (pipelined, a window of outstanding confirms)
//! while a consumer with a prefetch acks each one.
//! (b) PostgreSQL: single-row INSERT transactions (autocommit: one commit
//! each) into a scratch table from concurrent connections.

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use futures_util::StreamExt;
use gust_shared::{amqp, db};
use lapin::{
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
        QueueDeclareOptions, QueueDeleteOptions,
    },
    types::{AMQPValue, FieldTable},
    BasicProperties, Confirmation, PublisherConfirm,
};

use super::{m, repeat, Ctx, Measurement, ScenarioOutcome};
use crate::{
    cleanup,
    stack::{pg_connect, short_id, with_database},
};

/// Messages through the queue.
const MESSAGES: usize = 10_000;
/// Outstanding publisher confirms at most.
const CONFIRM_WINDOW: usize = 500;
/// Consumer prefetch.
const PREFETCH: u16 = 100;
/// Body size, about the size of a gust task message.
const BODY_BYTES: usize = 600;
/// INSERT transactions.
const COMMITS: usize = 10_000;
/// Concurrent database connections.
const CONNECTIONS: usize = 8;
/// Hang guard for either half.
const TIMEOUT: Duration = Duration::from_secs(300);

/// Measures both floors `ctx.repeat` times.
pub async fn run(ctx: &Ctx) -> ScenarioOutcome {
    repeat(ctx, "raw", async |_| {
        let mut out = tokio::time::timeout(TIMEOUT, amqp_floor(&ctx.amqp_url)).await.context("RabbitMQ floor timed out")??;
        out.extend(tokio::time::timeout(TIMEOUT, postgres_floor(&ctx.db_base)).await.context("PostgreSQL floor timed out")??);
        Ok(out)
    })
    .await
    .note(format!(
        "RabbitMQ: {MESSAGES} persistent {BODY_BYTES}-byte messages, fresh durable quorum queue, confirms pipelined \
         (window {CONFIRM_WINDOW}), one consumer (prefetch {PREFETCH}) acking each; msgs/s over publish-start → last ack"
    ))
    .note(format!("PostgreSQL: {COMMITS} single-row INSERTs in autocommit (one commit each) from {CONNECTIONS} connections"))
}

/// (a) publish + consume through a quorum queue.
async fn amqp_floor(url: &str) -> anyhow::Result<Vec<Measurement>> {
    let queue = format!("bench-{}.raw", short_id());
    cleanup::track_broker(std::slice::from_ref(&queue), &[]);
    let publisher = amqp::connect(url, "gust-bench-raw-publisher").await?;
    let consumer_connection = amqp::connect(url, "gust-bench-raw-consumer").await?;
    let result = async {
        let channel = publisher.create_channel().await?;
        let mut args = FieldTable::default();
        args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
        let durable = QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
        channel.queue_declare(queue.as_str().into(), durable, args).await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;

        let consumer_channel = consumer_connection.create_channel().await?;
        consumer_channel.basic_qos(PREFETCH, BasicQosOptions::default()).await?;
        let mut consumer = consumer_channel
            .basic_consume(queue.as_str().into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
            .await?;

        let started = Instant::now();
        let consuming = tokio::spawn(async move {
            let mut received = 0;
            while received < MESSAGES {
                let Some(delivery) = consumer.next().await else {
                    bail!("the consumer stopped after {received} messages")
                };
                delivery?.ack(BasicAckOptions::default()).await?;
                received += 1;
            }
            anyhow::Ok(started.elapsed())
        });

        let body = vec![b'x'; BODY_BYTES];
        let mut pending = VecDeque::with_capacity(CONFIRM_WINDOW);
        let mut nacked = 0;
        for _ in 0..MESSAGES {
            if pending.len() >= CONFIRM_WINDOW {
                let confirm: PublisherConfirm = pending.pop_front().expect("window is full");
                nacked += usize::from(!matches!(confirm.await?, Confirmation::Ack(_)));
            }
            let confirm = channel
                .basic_publish(
                    "".into(),
                    queue.as_str().into(),
                    BasicPublishOptions::default(),
                    &body,
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await?;
            pending.push_back(confirm);
        }
        for confirm in pending {
            nacked += usize::from(!matches!(confirm.await?, Confirmation::Ack(_)));
        }
        let published = started.elapsed();
        if nacked > 0 {
            bail!("the broker nacked {nacked} of {MESSAGES} messages");
        }
        let consumed = consuming.await.context("the consumer task panicked")??;
        let _ = channel.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await;
        cleanup::untrack_broker(std::slice::from_ref(&queue), &[]);
        Ok(vec![
            m(
                "amqp_msgs_per_s",
                "RabbitMQ publish+confirm+consume+ack",
                "msgs/s",
                MESSAGES as f64 / consumed.as_secs_f64(),
            ),
            m(
                "amqp_publish_per_s",
                "RabbitMQ publish+confirm only",
                "msgs/s",
                MESSAGES as f64 / published.as_secs_f64(),
            ),
        ])
    }
    .await;
    if result.is_err() {
        // A failed channel may be closed: delete the queue over a fresh connection.
        let queues = [queue.clone()];
        cleanup::delete_broker_objects(url, &queues, &[]).await;
        cleanup::untrack_broker(&queues, &[]);
    }
    let _ = publisher.close(200, "done".into()).await;
    let _ = consumer_connection.close(200, "done".into()).await;
    result
}

/// (b) single-row INSERT commits from concurrent connections into a scratch database.
async fn postgres_floor(db_base: &str) -> anyhow::Result<Vec<Measurement>> {
    let url = with_database(db_base, &format!("gust_bench_raw_{}", short_id()));
    cleanup::track_database(&url);
    db::ensure_database_exists(&url).await?;
    let result = async {
        let setup = pg_connect(&url).await?;
        setup
            .batch_execute("CREATE TABLE scratch (id bigserial PRIMARY KEY, payload text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())")
            .await?;
        let mut clients = Vec::new();
        for _ in 0..CONNECTIONS {
            clients.push(pg_connect(&url).await?);
        }
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for client in clients {
            let next = next.clone();
            tasks.spawn(async move {
                let insert = client.prepare("INSERT INTO scratch (payload) VALUES ($1)").await?;
                while next.fetch_add(1, Ordering::Relaxed) < COMMITS {
                    client.execute(&insert, &[&"a scratch row of about the size of a state change"]).await?;
                }
                anyhow::Ok(())
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined.context("an INSERT task panicked")??;
        }
        let elapsed = started.elapsed();
        let rows: i64 = setup.query_one("SELECT count(*) FROM scratch", &[]).await?.get(0);
        if rows != COMMITS as i64 {
            bail!("{rows} rows in the scratch table, expected {COMMITS}");
        }
        Ok(vec![m("pg_commits_per_s", "PostgreSQL single-row INSERT commits", "commits/s", COMMITS as f64 / elapsed.as_secs_f64())])
    }
    .await;
    match db::drop_database(&url).await {
        Ok(()) => cleanup::untrack_database(&url),
        Err(e) => eprintln!("warning: dropping the scratch database: {e}"),
    }
    result
}
