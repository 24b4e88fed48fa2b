//! RabbitMQ: connecting with a clear error, the namespaced topology, and a
//! publisher that only reports success once the broker confirmed every message.

use std::collections::HashSet;

use futures_util::future::try_join_all;
use lapin::{
    options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, ShortString},
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use tokio::sync::Mutex;

use crate::{message::TaskMessage, settings::redact_url};

/// Why a broker operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AmqpError {
    /// The broker could not be reached at start.
    #[error("cannot reach RabbitMQ at {url}: {source}; start it (rabbitmq-server -detached) or set GUST__AMQP__URL")]
    Unreachable {
        /// The URL without its password.
        url: String,
        /// What lapin said.
        source: lapin::Error,
    },
    /// A protocol operation failed.
    #[error("RabbitMQ error: {0}")]
    Protocol(#[from] lapin::Error),
    /// The broker refused or could not route a message.
    #[error("RabbitMQ did not accept the message for queue `{queue}`: {reason}")]
    NotConfirmed {
        /// Queue the message was routed to.
        queue: String,
        /// nack or unroutable.
        reason: &'static str,
    },
}

/// Opens a connection named after the component.
pub async fn connect(url: &str, component: &str) -> Result<Connection, AmqpError> {
    let props = ConnectionProperties::default().with_connection_name(component.into());
    Connection::connect(url, props)
        .await
        .map_err(|source| AmqpError::Unreachable { url: redact_url(url), source })
}

/// Names of everything gust declares, under one namespace.
#[derive(Debug, Clone)]
pub struct Topology {
    namespace: String,
}

impl Topology {
    /// The topology of namespace `ns`.
    pub fn new(ns: &str) -> Self {
        Self { namespace: ns.to_string() }
    }

    /// The direct exchange tasks are published to.
    pub fn tasks_exchange(&self) -> String {
        format!("{}.tasks", self.namespace)
    }

    /// The queue workers of `queue` consume.
    pub fn work_queue(&self, queue: &str) -> String {
        format!("{}.q.{queue}", self.namespace)
    }

    /// Where rejected (poison) messages end.
    pub fn dead_queue(&self) -> String {
        format!("{}.dead", self.namespace)
    }

    /// Declares the exchange, the dead queue and the work queue for `queue`, bound by routing key.
    ///
    /// Work queues are durable quorum queues; a message a worker rejects is
    /// dead-lettered to the dead queue through the default exchange.
    pub async fn declare_work_queue(&self, channel: &Channel, queue: &str) -> Result<(), AmqpError> {
        let durable = || QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
        channel
            .exchange_declare(
                self.tasks_exchange().into(),
                ExchangeKind::Direct,
                ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() },
                FieldTable::default(),
            )
            .await?;
        let mut dead_args = FieldTable::default();
        dead_args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
        channel.queue_declare(self.dead_queue().into(), durable(), dead_args).await?;

        let mut args = FieldTable::default();
        args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
        args.insert("x-dead-letter-exchange".into(), AMQPValue::LongString("".into()));
        args.insert("x-dead-letter-routing-key".into(), AMQPValue::LongString(self.dead_queue().into()));
        let name = self.work_queue(queue);
        channel.queue_declare(name.clone().into(), durable(), args).await?;
        channel
            .queue_bind(
                name.into(),
                self.tasks_exchange().into(),
                queue.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(())
    }
}

/// Publishes task messages persistently and waits for the broker's confirms.
pub struct TaskPublisher {
    channel: Channel,
    topology: Topology,
    declared: Mutex<HashSet<String>>,
}

impl TaskPublisher {
    /// Opens a channel in confirm mode on `connection`.
    pub async fn new(connection: &Connection, topology: Topology) -> Result<Self, AmqpError> {
        let channel = connection.create_channel().await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        Ok(Self { channel, topology, declared: Mutex::new(HashSet::new()) })
    }

    /// Publishes every message, pipelined, and returns once all are confirmed.
    ///
    /// Each target queue is declared first (once per publisher), so a task
    /// for a queue no worker has opened yet waits in the broker instead of
    /// being dropped as unroutable.
    pub async fn publish(&self, messages: &[TaskMessage]) -> Result<(), AmqpError> {
        {
            let mut declared = self.declared.lock().await;
            for message in messages {
                if !declared.contains(&message.queue) {
                    self.topology.declare_work_queue(&self.channel, &message.queue).await?;
                    declared.insert(message.queue.clone());
                }
            }
        }
        let exchange: ShortString = self.topology.tasks_exchange().into();
        let mut confirms = Vec::with_capacity(messages.len());
        for message in messages {
            let properties = BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type("application/json".into())
                .with_message_id(format!("{}:{}", message.ti_id, message.try_number).into());
            let confirm = self
                .channel
                .basic_publish(
                    exchange.clone(),
                    message.queue.as_str().into(),
                    BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() },
                    &message.to_bytes(),
                    properties,
                )
                .await?;
            confirms.push(async move {
                match confirm.await? {
                    Confirmation::Ack(None) => Ok(()),
                    Confirmation::Ack(Some(_)) => {
                        Err(AmqpError::NotConfirmed { queue: message.queue.clone(), reason: "unroutable" })
                    }
                    Confirmation::Nack(_) | Confirmation::NotRequested => {
                        Err(AmqpError::NotConfirmed { queue: message.queue.clone(), reason: "nacked by the broker" })
                    }
                }
            });
        }
        try_join_all(confirms).await?;
        Ok(())
    }
}
