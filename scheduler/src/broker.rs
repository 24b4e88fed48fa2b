//! The scheduler's RabbitMQ session: a confirming publisher and the
//! dead-letter consumer, re-opened with backoff after the broker restarts.
//! A publish that fails is reported to its caller, whose transaction rolls
//! back, so the tasks are published again on the next pass.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use deadpool_postgres::Pool;
use gust_shared::{
    amqp::{self, AmqpError, TaskPublisher, Topology},
    broker::{BrokerFuture, Publish},
    message::TaskMessage,
    settings::AmqpSettings,
};
use lapin::Connection;
use tokio::{sync::Mutex, task::JoinHandle};

use crate::{dead_letters, metrics::Metrics};

struct Session {
    connection: Connection,
    publisher: Arc<TaskPublisher>,
    dead_letters: JoinHandle<()>,
}

/// A lazily (re)connected broker session.
pub struct Broker {
    amqp: AmqpSettings,
    topology: Topology,
    pool: Pool,
    metrics: Metrics,
    session: Mutex<Option<Session>>,
    next_attempt: Mutex<Instant>,
    backoff: Mutex<Duration>,
}

const FIRST_BACKOFF: Duration = Duration::from_millis(200);

impl Broker {
    /// Connects once; an unreachable broker at start is an error for the operator to fix.
    pub async fn connect(
        amqp: &AmqpSettings,
        topology: Topology,
        pool: Pool,
        metrics: Metrics,
    ) -> Result<Broker, AmqpError> {
        let broker = Broker {
            amqp: amqp.clone(),
            topology,
            pool,
            metrics,
            session: Mutex::new(None),
            next_attempt: Mutex::new(Instant::now()),
            backoff: Mutex::new(FIRST_BACKOFF),
        };
        // An unreachable broker fails at once; a protocol error (RabbitMQ can refuse a
        // consumer on a quorum queue whose replica is still starting) is retried a few times.
        let mut attempt = 0;
        let session = loop {
            match broker.open().await {
                Ok(session) => break session,
                Err(e @ AmqpError::Unreachable { .. }) => return Err(e),
                Err(e) if attempt >= 5 => return Err(e),
                Err(e) => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "opening the RabbitMQ session failed; retrying");
                    tokio::time::sleep(FIRST_BACKOFF * attempt).await;
                }
            }
        };
        *broker.session.lock().await = Some(session);
        Ok(broker)
    }

    async fn open(&self) -> Result<Session, AmqpError> {
        let connection = amqp::connect_to(&self.amqp, "gust-scheduler").await?;
        let publisher = TaskPublisher::new(&connection, self.topology.clone()).await?;
        let dead_letters =
            dead_letters::consume(&connection, &self.topology, self.pool.clone(), self.metrics.clone()).await?;
        Ok(Session { connection, publisher: Arc::new(publisher), dead_letters })
    }

    /// Re-opens the session if it was lost and the backoff allows; true when connected.
    pub async fn ensure(&self) -> bool {
        let mut session = self.session.lock().await;
        if let Some(s) = session.as_ref() {
            if s.connection.status().connected() && !s.dead_letters.is_finished() {
                return true;
            }
            tracing::warn!("RabbitMQ session lost; reconnecting");
            s.dead_letters.abort();
            *session = None;
        }
        let mut next = self.next_attempt.lock().await;
        if Instant::now() < *next {
            return false;
        }
        match self.open().await {
            Ok(fresh) => {
                *session = Some(fresh);
                *self.backoff.lock().await = FIRST_BACKOFF;
                tracing::info!("connected to RabbitMQ");
                true
            }
            Err(e) => {
                let mut backoff = self.backoff.lock().await;
                *next = Instant::now() + *backoff;
                tracing::warn!(error = %e, retry_in = ?*backoff, "reconnecting to RabbitMQ failed");
                *backoff = (*backoff * 2).min(Duration::from_secs(10));
                false
            }
        }
    }

    /// Publishes and waits for confirms; on failure the session is dropped for re-opening.
    pub async fn publish(&self, messages: &[TaskMessage]) -> Result<(), AmqpError> {
        let publisher = self.publisher().await?;
        let result = publisher.publish(messages).await;
        self.forget_on_error(&result).await;
        result
    }

    /// Publishes one retry to its delay queue and waits for the confirm.
    pub async fn publish_delayed(&self, message: &TaskMessage, delay_ms: u64) -> Result<(), AmqpError> {
        let publisher = self.publisher().await?;
        let result = publisher.publish_delayed(message, delay_ms).await;
        self.forget_on_error(&result).await;
        result
    }

    async fn publisher(&self) -> Result<Arc<TaskPublisher>, AmqpError> {
        if !self.ensure().await {
            return Err(AmqpError::Disconnected);
        }
        self.session.lock().await.as_ref().map(|s| s.publisher.clone()).ok_or(AmqpError::Disconnected)
    }

    async fn forget_on_error(&self, result: &Result<(), AmqpError>) {
        if result.is_err() {
            if let Some(s) = self.session.lock().await.take() {
                s.dead_letters.abort();
            }
        }
    }

    /// Closes the session.
    pub async fn close(&self) {
        if let Some(s) = self.session.lock().await.take() {
            s.dead_letters.abort();
            // A broker that does not answer the close must not hold the scheduler's exit.
            let _ =
                tokio::time::timeout(Duration::from_secs(5), s.connection.close(200, "scheduler stopped".into())).await;
        }
    }
}

impl Publish for Broker {
    fn publish<'a>(&'a self, messages: &'a [TaskMessage]) -> BrokerFuture<'a> {
        Box::pin(Broker::publish(self, messages))
    }

    fn publish_delayed<'a>(&'a self, message: &'a TaskMessage, delay_ms: u64) -> BrokerFuture<'a> {
        Box::pin(Broker::publish_delayed(self, message, delay_ms))
    }

    fn publish_dead<'a>(&'a self, body: &'a [u8], reason: &'a str, detail: &'a str) -> BrokerFuture<'a> {
        Box::pin(async move {
            let publisher = self.publisher().await?;
            let result = publisher.publish_dead(body, reason, detail).await;
            self.forget_on_error(&result).await;
            result
        })
    }
}
