//! The dead-letter consumer: takes every message off the dead queue,
//! records it with its reason in `dead_letters` (the API lists them), and
//! fails the try of a task whose message hit the broker's delivery limit,
//! so a task that keeps killing workers ends `failed` instead of looping.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use deadpool_postgres::Pool;
use futures_util::StreamExt;
use gust_shared::{
    amqp::{AmqpError, Topology, DEAD_DETAIL_HEADER, DEAD_REASON_HEADER},
    db::{dead_letters, logs, task_instances::sweeps, DbError},
    message::{MessageError, TaskMessage},
};
use lapin::{
    message::Delivery,
    options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions},
    types::{AMQPValue, FieldTable},
    Connection,
};
use tokio::task::JoinHandle;

use crate::metrics::{Metrics, ReasonLabel};

/// Longest part of a dead message's body that is stored.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// Starts consuming the dead queue; the task ends when the connection does.
pub async fn consume(
    connection: &Connection,
    topology: &Topology,
    pool: Pool,
    metrics: Metrics,
) -> Result<JoinHandle<()>, AmqpError> {
    let channel = connection.create_channel().await?;
    topology.declare_dead_queue(&channel).await?;
    channel.basic_qos(32, BasicQosOptions::default()).await?;
    let mut consumer = channel
        .basic_consume(
            topology.dead_queue().into(),
            "gust-scheduler-dead-letters".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok(tokio::spawn(async move {
        let _channel = channel;
        while let Some(delivery) = consumer.next().await {
            match delivery {
                Ok(delivery) => record(&pool, &metrics, delivery).await,
                Err(e) => {
                    tracing::warn!(error = %e, "dead-letter consumer stopped");
                    return;
                }
            }
        }
    }))
}

/// The first `x-death` entry: why and from where the broker dead-lettered it.
struct Death {
    reason: String,
    queue: String,
    count: Option<i64>,
    /// Why, for people, when a worker dead-lettered the message itself.
    detail: Option<String>,
}

fn text(value: &AMQPValue) -> Option<String> {
    match value {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_string()),
        _ => None,
    }
}

fn number(value: &AMQPValue) -> Option<i64> {
    match value {
        AMQPValue::LongLongInt(n) => Some(*n),
        AMQPValue::LongInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortInt(n) => Some(i64::from(*n)),
        AMQPValue::LongUInt(n) => Some(i64::from(*n)),
        _ => None,
    }
}

fn death_of(delivery: &Delivery) -> Death {
    let headers = delivery.properties.headers().as_ref();
    let first = headers.and_then(|h| h.inner().get("x-death")).and_then(|v| match v {
        AMQPValue::FieldArray(entries) => entries.as_slice().first().cloned(),
        _ => None,
    });
    let entry = match first {
        Some(AMQPValue::FieldTable(table)) => table,
        _ => FieldTable::default(),
    };
    let delivery_count = headers.and_then(|h| h.inner().get("x-delivery-count")).and_then(number);
    // A worker that cannot run a message (a custom operator it lacks) sends it here itself, saying why.
    let own = |name: &str| headers.and_then(|h| h.inner().get(name)).and_then(text);
    if let Some(reason) = own(DEAD_REASON_HEADER) {
        return Death {
            reason,
            queue: delivery.routing_key.as_str().to_string(),
            count: None,
            detail: own(DEAD_DETAIL_HEADER),
        };
    }
    Death {
        detail: None,
        reason: entry.inner().get("reason").and_then(text).unwrap_or_else(|| "unknown".into()),
        queue: entry.inner().get("queue").and_then(text).unwrap_or_default(),
        count: delivery_count.or_else(|| entry.inner().get("count").and_then(number)),
    }
}

async fn record(pool: &Pool, metrics: &Metrics, delivery: Delivery) {
    let death = death_of(&delivery);
    let mut letter = dead_letters::DeadLetter {
        queue: death.queue.clone(),
        routing_key: delivery.routing_key.as_str().to_string(),
        deliveries: death.count,
        body: String::from_utf8_lossy(&delivery.data[..delivery.data.len().min(MAX_BODY_BYTES)]).into_owned(),
        ..Default::default()
    };
    let parsed = TaskMessage::from_bytes(&delivery.data);
    match &parsed {
        Err(MessageError::Malformed(e)) => (letter.reason, letter.detail) = ("malformed".into(), e.to_string()),
        Err(e @ MessageError::UnknownVersion { .. }) => {
            (letter.reason, letter.detail) = ("unknown_schema_version".into(), e.to_string())
        }
        Ok(message) => {
            letter.ti_id = Some(message.ti_id);
            letter.dag_id = Some(message.dag_id.clone());
            letter.run_id = Some(message.run_id.clone());
            letter.task_id = Some(message.task_id.clone());
            letter.try_number = Some(message.try_number);
        }
    }
    let stored = (|| store(pool, &letter, parsed.as_ref().ok(), &death))
        .retry(ExponentialBuilder::default().with_max_times(8).with_max_delay(Duration::from_secs(10)))
        .when(DbError::is_transient)
        .notify(|e: &DbError, wait| tracing::warn!(error = %e, ?wait, "recording a dead letter failed; retrying"))
        .await;
    let settled = match stored {
        Ok(reason) => {
            tracing::warn!(%reason, queue = %death.queue, ti_id = ?letter.ti_id, "message dead-lettered");
            metrics.dead_letters.get_or_create(&ReasonLabel { reason }).inc();
            delivery.acker.ack(BasicAckOptions::default()).await
        }
        Err(e) => {
            // Kept in the dead queue; it is recorded once the database takes it.
            tracing::error!(error = %e, "recording a dead letter failed; leaving it in the dead queue");
            delivery.acker.nack(BasicNackOptions { requeue: true, multiple: false }).await
        }
    };
    if let Err(e) = settled {
        tracing::warn!(error = %e, "could not settle a dead letter; it will be seen again");
    }
}

/// Stores the letter (and fails its try when the broker gave up on it) in one transaction; returns the reason.
async fn store(
    pool: &Pool,
    letter: &dead_letters::DeadLetter,
    message: Option<&TaskMessage>,
    death: &Death,
) -> Result<String, DbError> {
    let mut letter = letter.clone();
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    if let Some(message) = message {
        let exists = sweeps::exists(&tx, message.ti_id).await?;
        if !exists {
            letter.reason = "unknown_task_instance".into();
            letter.detail = format!("task instance {} does not exist (its run or DAG was deleted?)", message.ti_id);
        } else if death.reason == "delivery_limit" {
            let detail = format!(
                "delivered {} times without finishing: its worker died each time (delivery limit); the try is marked failed",
                death.count.map_or("too many".to_string(), |c| c.to_string())
            );
            let failed = sweeps::fail_undeliverable(&tx, message.ti_id, message.try_number, &detail).await?;
            if failed {
                logs::append(&tx, message.ti_id, message.try_number, &[(chrono::Utc::now(), "gust", detail.as_str())])
                    .await?;
            }
            letter.reason = "delivery_limit".into();
            letter.detail = detail;
        } else if let Some(detail) = &death.detail {
            // The worker's own reason (a missing custom operator): the try cannot run, so it fails.
            let failed = sweeps::fail_undeliverable(&tx, message.ti_id, message.try_number, detail).await?;
            if failed {
                let line = format!("gust: {detail}");
                logs::append(&tx, message.ti_id, message.try_number, &[(chrono::Utc::now(), "gust", line.as_str())])
                    .await?;
            }
            letter.reason = death.reason.clone();
            letter.detail = detail.clone();
        } else if death.reason == "rejected" {
            // This gust reads the message, yet a worker refused it unread: that worker is older.
            letter.reason = death.reason.clone();
            letter.detail = format!(
                "a worker on {} rejected it without running it: most likely a worker older than this scheduler, which cannot read task message schema version {}; upgrade the workers to the scheduler's gust version",
                death.queue, message.version
            );
        } else {
            letter.reason = death.reason.clone();
            letter.detail = format!("the broker dead-lettered it ({}) from {}", death.reason, death.queue);
        }
    }
    dead_letters::insert(&tx, &letter).await?;
    tx.commit().await?;
    Ok(letter.reason)
}
