//! RabbitMQ: connecting with a clear error, the namespaced topology, and a
//! publisher that only reports success once the broker confirmed every message.

use std::{collections::HashSet, time::Duration};

use futures_util::future::try_join_all;
use lapin::{
    options::{
        BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    },
    tcp::{OwnedIdentity, OwnedTLSConfig},
    types::{AMQPValue, FieldTable, ShortString},
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, DefaultConnectionBuilder, ExchangeKind,
};
use tokio::sync::Mutex;

use crate::{
    message::TaskMessage,
    settings::{redact_url, AmqpSettings},
};

/// Why a broker operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AmqpError {
    /// The broker could not be reached at start.
    #[error("cannot reach RabbitMQ at {url} ({detail}); start it (rabbitmq-server -detached) or set GUST__AMQP__URL")]
    Unreachable {
        /// The URL (or comma-separated URLs) without passwords.
        url: String,
        /// What each URL answered, without passwords.
        detail: String,
    },
    /// A TLS file the settings name cannot be read.
    #[error("cannot read {key} ({path}): {cause}; fix the path or unset {key}")]
    TlsFile {
        /// The setting that names the file.
        key: &'static str,
        /// The file.
        path: String,
        /// What reading it said.
        cause: String,
    },
    /// The connection is down and is being re-established.
    #[error("not connected to RabbitMQ (reconnecting)")]
    Disconnected,
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

/// How long one node of the URL list may take to accept a connection before the next is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens a connection named after the component to the first broker of
/// `urls` (one `amqp://` URL, or several separated by commas: the nodes of a
/// cluster) that answers.
///
/// Every reconnect calls this again from the first URL, so a component that
/// lost its node fails over to the next live one and re-declares its topology
/// there; quorum queues are replicated on every node, so their messages are
/// still there.
pub async fn connect(urls: &str, component: &str) -> Result<Connection, AmqpError> {
    connect_with_tls(urls, component, &OwnedTLSConfig::default()).await
}

/// [`connect`] as the settings say: their URLs, and for `amqps://` their CA
/// file (trusted besides the system's CAs) and client certificate.
pub async fn connect_to(settings: &AmqpSettings, component: &str) -> Result<Connection, AmqpError> {
    connect_with_tls(&settings.url, component, &tls_config(settings)?).await
}

/// The rustls settings of `amqps://` connections, read from the files the settings name.
fn tls_config(settings: &AmqpSettings) -> Result<OwnedTLSConfig, AmqpError> {
    let read = |key: &'static str, path: &std::path::Path| {
        std::fs::read(path).map_err(|e| AmqpError::TlsFile {
            key,
            path: path.display().to_string(),
            cause: e.to_string(),
        })
    };
    let cert_chain = match &settings.tls_ca_file {
        Some(path) => Some(String::from_utf8_lossy(&read("GUST__AMQP__TLS_CA_FILE", path)?).into_owned()),
        None => None,
    };
    let identity = match (&settings.tls_client_cert, &settings.tls_client_key) {
        (Some(cert), Some(key)) => Some(OwnedIdentity::PKCS8 {
            pem: read("GUST__AMQP__TLS_CLIENT_CERT", cert)?,
            key: read("GUST__AMQP__TLS_CLIENT_KEY", key)?,
        }),
        _ => None,
    };
    Ok(OwnedTLSConfig { identity, cert_chain })
}

async fn connect_with_tls(urls: &str, component: &str, tls: &OwnedTLSConfig) -> Result<Connection, AmqpError> {
    let mut failures = Vec::new();
    for url in urls.split(',').map(str::trim).filter(|url| !url.is_empty()) {
        let props = ConnectionProperties::default().with_connection_name(component.into());
        let connect = async {
            DefaultConnectionBuilder::new()?
                .with_uri_str(url.to_string())
                .with_properties(props)
                .with_tls_config(tls.clone())
                .connect()
                .await
        };
        let attempt = tokio::time::timeout(CONNECT_TIMEOUT, connect).await;
        match attempt {
            Ok(Ok(connection)) => {
                if !failures.is_empty() {
                    tracing::info!(url = %redact_url(url), skipped = %failures.join("; "), "connected to a later RabbitMQ node of the list");
                }
                return Ok(connection);
            }
            Ok(Err(source)) => failures.push(format!("{}: {source}", redact_url(url))),
            Err(_) => failures.push(format!("{}: no answer within {CONNECT_TIMEOUT:?}", redact_url(url))),
        }
    }
    Err(AmqpError::Unreachable { url: redact_url(urls), detail: failures.join("; ") })
}

/// Names and shapes of everything gust declares, under one namespace.
#[derive(Debug, Clone)]
pub struct Topology {
    namespace: String,
    delivery_limit: u32,
}

/// Header that routes a delayed message to the delay queue of its delay.
const DELAY_HEADER: &str = "gust-delay-ms";
/// Header of a message a worker sent to the dead queue itself: the reason, one word.
pub const DEAD_REASON_HEADER: &str = "gust-dead-reason";
/// Header of a message a worker sent to the dead queue itself: the reason, for people.
pub const DEAD_DETAIL_HEADER: &str = "gust-dead-detail";

impl Topology {
    /// The topology of namespace `ns` with the default delivery limit.
    pub fn new(ns: &str) -> Self {
        Self { namespace: ns.to_string(), delivery_limit: crate::settings::AmqpSettings::default().delivery_limit }
    }

    /// The topology these settings describe.
    pub fn from_settings(settings: &crate::settings::AmqpSettings) -> Self {
        Self { namespace: settings.namespace.clone(), delivery_limit: settings.delivery_limit }
    }

    /// The headers exchange that routes retries to the delay queue of their delay.
    pub fn delay_exchange(&self) -> String {
        format!("{}.delay", self.namespace)
    }

    /// The queue where messages wait `delay_ms` before going back to their work queue.
    ///
    /// `delayed`, not the `delay.<ms>` of gust before 2026-11-30: those were
    /// classic queues, and a queue cannot change its type, so the quorum
    /// queues have new names; the old ones expire when idle. During an upgrade
    /// both may be bound, and a message routed to both is run once (the claim
    /// drops the second delivery).
    pub fn delay_queue(&self, delay_ms: u64) -> String {
        format!("{}.delayed.{delay_ms}", self.namespace)
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

    /// Declares the durable quorum queue where poison messages end.
    pub async fn declare_dead_queue(&self, channel: &Channel) -> Result<(), AmqpError> {
        let mut args = FieldTable::default();
        args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
        channel.queue_declare(self.dead_queue().into(), durable(), args).await?;
        Ok(())
    }

    /// Declares the exchange, the dead queue and the work queue for `queue`, bound by routing key.
    ///
    /// Work queues are durable quorum queues. A message a worker rejects, or
    /// one delivered more than the delivery limit (its task keeps killing
    /// workers), is dead-lettered to the dead queue.
    pub async fn declare_work_queue(&self, channel: &Channel, queue: &str) -> Result<(), AmqpError> {
        channel
            .exchange_declare(
                self.tasks_exchange().into(),
                ExchangeKind::Direct,
                ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() },
                FieldTable::default(),
            )
            .await?;
        self.declare_dead_queue(channel).await?;

        let mut args = FieldTable::default();
        args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
        args.insert("x-dead-letter-exchange".into(), AMQPValue::LongString("".into()));
        args.insert("x-dead-letter-routing-key".into(), AMQPValue::LongString(self.dead_queue().into()));
        args.insert("x-delivery-limit".into(), AMQPValue::LongLongInt(i64::from(self.delivery_limit)));
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

    /// Declares the delay exchange and the delay queue for `delay_ms`.
    ///
    /// A delay queue holds messages for its TTL, then dead-letters them to
    /// the tasks exchange with their original routing key (the task's queue).
    /// One queue per distinct delay means a short retry never waits behind a
    /// long one.
    ///
    /// Delay queues are quorum queues, like the work queues: on a cluster a
    /// pending retry survives the loss of a node, and a retry can be published
    /// while any majority of nodes is up (a classic queue lives on one node,
    /// and while that node is down it can be neither declared nor used).
    /// Message TTLs on quorum queues need RabbitMQ 3.10 or later.
    ///
    /// Expired messages are dead-lettered with RabbitMQ's default
    /// `at-most-once` strategy: measured on 3.10.8, the `at-least-once`
    /// strategy left a retry stuck in its delay queue for good once the
    /// queue's leader changed before the message expired (the cluster outage
    /// test), while `at-most-once` moved it on time. At most once loses the
    /// message only if the leader dies in the instant between expiry and
    /// re-publish.
    ///
    /// Delay queues do not expire (`x-expires`). Measured on 3.10.8 (the
    /// soak, and a probe): re-declaring a quorum queue does not reset its
    /// expiry timer, so every delay queue was deleted `ttl + 60 s` after it
    /// was created, however busy, with the retries waiting in it (about 1
    /// in 50 retries lost). There is one queue per distinct delay in use,
    /// and empty quorum queues cost little; delete unused ones by hand if
    /// retry delays change often.
    pub async fn declare_delay_queue(&self, channel: &Channel, delay_ms: u64) -> Result<(), AmqpError> {
        channel
            .exchange_declare(
                self.delay_exchange().into(),
                ExchangeKind::Headers,
                ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() },
                FieldTable::default(),
            )
            .await?;
        let ttl = i64::try_from(delay_ms).unwrap_or(i64::MAX);
        let mut args = FieldTable::default();
        args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
        args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl));
        args.insert("x-dead-letter-exchange".into(), AMQPValue::LongString(self.tasks_exchange().into()));
        let name = self.delay_queue(delay_ms);
        channel.queue_declare(name.clone().into(), durable(), args).await?;
        let mut binding = FieldTable::default();
        binding.insert("x-match".into(), AMQPValue::LongString("all".into()));
        binding.insert(DELAY_HEADER.into(), AMQPValue::LongString(delay_ms.to_string().into()));
        channel
            .queue_bind(name.into(), self.delay_exchange().into(), "".into(), QueueBindOptions::default(), binding)
            .await?;
        Ok(())
    }
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() }
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
            let confirm = self.send(exchange.clone(), message, message_properties(message)).await?;
            confirms.push(confirmed(confirm, &message.queue));
        }
        try_join_all(confirms).await?;
        Ok(())
    }

    /// Publishes `message` to wait `delay_ms` in its delay queue before it
    /// reaches its work queue, and returns once the broker confirmed it.
    pub async fn publish_delayed(&self, message: &TaskMessage, delay_ms: u64) -> Result<(), AmqpError> {
        self.topology.declare_delay_queue(&self.channel, delay_ms).await?;
        let mut headers = FieldTable::default();
        headers.insert(DELAY_HEADER.into(), AMQPValue::LongString(delay_ms.to_string().into()));
        let properties = message_properties(message).with_headers(headers);
        let confirm = self.send(self.topology.delay_exchange().into(), message, properties).await?;
        confirmed(confirm, &self.topology.delay_queue(delay_ms)).await
    }

    /// Sends `body` (a delivery this worker cannot run) straight to the dead
    /// queue with why, in the headers [`DEAD_REASON_HEADER`] and
    /// [`DEAD_DETAIL_HEADER`] the scheduler records; returns once confirmed.
    pub async fn publish_dead(&self, body: &[u8], reason: &str, detail: &str) -> Result<(), AmqpError> {
        self.topology.declare_dead_queue(&self.channel).await?;
        let mut headers = FieldTable::default();
        headers.insert(DEAD_REASON_HEADER.into(), AMQPValue::LongString(reason.into()));
        headers.insert(DEAD_DETAIL_HEADER.into(), AMQPValue::LongString(detail.into()));
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_headers(headers);
        let dead_queue = self.topology.dead_queue();
        let confirm = self
            .channel
            .basic_publish(
                "".into(),
                dead_queue.as_str().into(),
                BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() },
                body,
                properties,
            )
            .await?;
        confirmed(confirm, &dead_queue).await
    }

    async fn send(
        &self,
        exchange: ShortString,
        message: &TaskMessage,
        properties: BasicProperties,
    ) -> Result<lapin::PublisherConfirm, AmqpError> {
        Ok(self
            .channel
            .basic_publish(
                exchange,
                message.queue.as_str().into(),
                BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() },
                &message.to_bytes(),
                properties,
            )
            .await?)
    }
}

fn message_properties(message: &TaskMessage) -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_message_id(format!("{}:{}", message.ti_id, message.try_number).into())
}

/// How long a publish waits for the broker's confirm. A quorum queue without
/// a majority of its replicas (two of three cluster nodes down) neither
/// confirms nor nacks; the publisher then reports the publish as failed (the
/// scheduler rolls its dispatch back and publishes again later) instead of
/// holding its transaction until a node returns.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

async fn confirmed(confirm: lapin::PublisherConfirm, queue: &str) -> Result<(), AmqpError> {
    let Ok(confirmation) = tokio::time::timeout(CONFIRM_TIMEOUT, confirm).await else {
        return Err(AmqpError::NotConfirmed { queue: queue.to_string(), reason: "no confirm within 30 s" });
    };
    match confirmation? {
        Confirmation::Ack(None) => Ok(()),
        Confirmation::Ack(Some(_)) => Err(AmqpError::NotConfirmed { queue: queue.to_string(), reason: "unroutable" }),
        Confirmation::Nack(_) | Confirmation::NotRequested => {
            Err(AmqpError::NotConfirmed { queue: queue.to_string(), reason: "nacked by the broker" })
        }
    }
}
