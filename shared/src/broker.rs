//! The one seam between gust and its message broker: what the scheduler and
//! the workers need from it, so the same scheduling and worker code runs on
//! RabbitMQ in the daemons ([`crate::amqp::TaskPublisher`] and lapin
//! deliveries) and on an in-process channel ([`LocalBroker`]) in
//! `gust dags test`.
//!
//! The local broker keeps the guarantees the engine relies on for one
//! process: a published message is delivered once unless it is requeued,
//! a delayed one after its delay, a rejected one is kept as a dead letter.
//! It keeps nothing across restarts, which a test run does not need.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::mpsc;

use crate::{amqp::AmqpError, message::TaskMessage};

/// A boxed broker operation.
pub type BrokerFuture<'a> = Pin<Box<dyn Future<Output = Result<(), AmqpError>> + Send + 'a>>;

/// Publishes task messages, each returning once the broker has taken it.
pub trait Publish: Send + Sync {
    /// Publishes messages to their work queues.
    fn publish<'a>(&'a self, messages: &'a [TaskMessage]) -> BrokerFuture<'a>;
    /// Publishes a message that reaches its work queue after `delay_ms` (a retry, a sensor's next poke).
    fn publish_delayed<'a>(&'a self, message: &'a TaskMessage, delay_ms: u64) -> BrokerFuture<'a>;
    /// Sends a body no worker can run to the dead queue, with a one-word reason and a detail.
    fn publish_dead<'a>(&'a self, body: &'a [u8], reason: &'a str, detail: &'a str) -> BrokerFuture<'a>;
}

impl Publish for crate::amqp::TaskPublisher {
    fn publish<'a>(&'a self, messages: &'a [TaskMessage]) -> BrokerFuture<'a> {
        Box::pin(crate::amqp::TaskPublisher::publish(self, messages))
    }

    fn publish_delayed<'a>(&'a self, message: &'a TaskMessage, delay_ms: u64) -> BrokerFuture<'a> {
        Box::pin(crate::amqp::TaskPublisher::publish_delayed(self, message, delay_ms))
    }

    fn publish_dead<'a>(&'a self, body: &'a [u8], reason: &'a str, detail: &'a str) -> BrokerFuture<'a> {
        Box::pin(crate::amqp::TaskPublisher::publish_dead(self, body, reason, detail))
    }
}

/// How a consumer settles one delivery.
pub trait Settle: Send + Sync {
    /// Done with it: the broker forgets it.
    fn ack(&self) -> BrokerFuture<'_>;
    /// Not done: the broker delivers it again (to this or another consumer).
    fn requeue(&self) -> BrokerFuture<'_>;
    /// It can never run: the broker dead-letters it.
    fn reject(&self) -> BrokerFuture<'_>;
}

/// One delivery of a task message.
pub struct Delivery {
    /// The message body.
    pub body: Vec<u8>,
    /// The queue (routing key) it came from.
    pub routing_key: String,
    /// How to settle it.
    pub settle: Box<dyn Settle>,
}

impl Settle for lapin::Acker {
    fn ack(&self) -> BrokerFuture<'_> {
        Box::pin(async move { Ok(lapin::Acker::ack(self, Default::default()).await.map(drop)?) })
    }

    fn requeue(&self) -> BrokerFuture<'_> {
        let options = lapin::options::BasicNackOptions { requeue: true, multiple: false };
        Box::pin(async move { Ok(self.nack(options).await.map(drop)?) })
    }

    fn reject(&self) -> BrokerFuture<'_> {
        let options = lapin::options::BasicRejectOptions { requeue: false };
        Box::pin(async move { Ok(lapin::Acker::reject(self, options).await.map(drop)?) })
    }
}

impl From<lapin::message::Delivery> for Delivery {
    fn from(delivery: lapin::message::Delivery) -> Self {
        Delivery {
            routing_key: delivery.routing_key.to_string(),
            body: delivery.data,
            settle: Box::new(delivery.acker),
        }
    }
}

/// A message the local broker dead-lettered, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// One word: `rejected`, `missing_operator`, ….
    pub reason: String,
    /// For people.
    pub detail: String,
    /// The body.
    pub body: Vec<u8>,
}

/// A message in the local broker: its queue and its body.
type Queued = (String, Vec<u8>);

/// An in-process broker: one channel for every queue, delays as timers.
#[derive(Clone)]
pub struct LocalBroker {
    sender: mpsc::UnboundedSender<Queued>,
    receiver: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Queued>>>,
    dead: Arc<Mutex<Vec<DeadLetter>>>,
}

impl Default for LocalBroker {
    fn default() -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        LocalBroker { sender, receiver: Arc::new(tokio::sync::Mutex::new(receiver)), dead: Arc::default() }
    }
}

impl LocalBroker {
    /// The next delivery, in publish order; `None` never comes while the broker lives.
    pub async fn next(&self) -> Option<Delivery> {
        let (routing_key, body) = self.receiver.lock().await.recv().await?;
        let settle = LocalSettle { broker: self.clone(), routing_key: routing_key.clone(), body: body.clone() };
        Some(Delivery { body, routing_key, settle: Box::new(settle) })
    }

    /// The messages dead-lettered so far.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.dead.lock().expect("dead letters").clone()
    }

    fn send(&self, queue: &str, body: Vec<u8>) -> Result<(), AmqpError> {
        self.sender.send((queue.to_string(), body)).map_err(|_| AmqpError::Disconnected)
    }

    fn bury(&self, reason: &str, detail: &str, body: &[u8]) {
        let letter = DeadLetter { reason: reason.into(), detail: detail.into(), body: body.to_vec() };
        self.dead.lock().expect("dead letters").push(letter);
    }
}

impl Publish for LocalBroker {
    fn publish<'a>(&'a self, messages: &'a [TaskMessage]) -> BrokerFuture<'a> {
        Box::pin(async move { messages.iter().try_for_each(|m| self.send(&m.queue, m.to_bytes())) })
    }

    fn publish_delayed<'a>(&'a self, message: &'a TaskMessage, delay_ms: u64) -> BrokerFuture<'a> {
        let (sender, queue, body) = (self.sender.clone(), message.queue.clone(), message.to_bytes());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            let _ = sender.send((queue, body));
        });
        Box::pin(async { Ok(()) })
    }

    fn publish_dead<'a>(&'a self, body: &'a [u8], reason: &'a str, detail: &'a str) -> BrokerFuture<'a> {
        self.bury(reason, detail, body);
        Box::pin(async { Ok(()) })
    }
}

/// Settles a local delivery: requeue sends it again, reject keeps it as a dead letter.
struct LocalSettle {
    broker: LocalBroker,
    routing_key: String,
    body: Vec<u8>,
}

impl Settle for LocalSettle {
    fn ack(&self) -> BrokerFuture<'_> {
        Box::pin(async { Ok(()) })
    }

    fn requeue(&self) -> BrokerFuture<'_> {
        Box::pin(async move { self.broker.send(&self.routing_key, self.body.clone()) })
    }

    fn reject(&self) -> BrokerFuture<'_> {
        self.broker.bury("rejected", "the worker rejected the message", &self.body);
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(task_id: &str) -> TaskMessage {
        let yaml = format!("dag_id: d\ntasks:\n  - {{id: {task_id}, operator: noop}}\n");
        let dag = crate::dag::parse_dag_file("d.yaml", &yaml).unwrap();
        let task = &dag.tasks[0];
        TaskMessage {
            version: crate::message::SCHEMA_VERSION,
            ti_id: uuid::Uuid::new_v4(),
            dag_id: "d".into(),
            run_id: "r".into(),
            task_id: task_id.into(),
            map_index: -1,
            map_item: None,
            try_number: 1,
            logical_date: None,
            queue: task.queue.clone(),
            operator: task.operator.clone(),
            execution_timeout_ms: None,
            retry: task.retry_policy(),
            env: Default::default(),
            params: None,
            conf: None,
            first_poke_at: None,
            queued_at: None,
            outlets: Vec::new(),
        }
    }

    fn task_id(delivery: &Delivery) -> String {
        TaskMessage::from_bytes(&delivery.body).unwrap().task_id
    }

    #[tokio::test]
    async fn the_local_broker_delivers_in_order_after_delays_again_on_requeue_and_keeps_rejects() {
        let broker = LocalBroker::default();
        broker.publish_delayed(&message("later"), 50).await.unwrap();
        broker.publish(&[message("a"), message("b")]).await.unwrap();
        let a = broker.next().await.unwrap();
        assert_eq!((task_id(&a), a.routing_key.as_str()), ("a".to_string(), "default"));
        a.settle.requeue().await.unwrap();
        let b = broker.next().await.unwrap();
        assert_eq!(task_id(&b), "b");
        b.settle.reject().await.unwrap();
        assert_eq!(task_id(&broker.next().await.unwrap()), "a", "a requeued delivery comes again");
        assert_eq!(task_id(&broker.next().await.unwrap()), "later", "a delayed one after its delay");
        let dead = broker.dead_letters();
        assert_eq!(dead.len(), 1);
        assert_eq!(TaskMessage::from_bytes(&dead[0].body).unwrap().task_id, "b");
    }
}
