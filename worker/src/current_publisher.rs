//! The publisher of the worker's live broker session.
//!
//! A task outlives the broker session it was delivered in: when the worker
//! loses its RabbitMQ connection (a broker restart, a cluster node stopping),
//! its running tasks carry on while it reconnects. A task that then ends
//! with a retry (or a sensor's next poke) publishes it through the session
//! that is live now, not through the channel of the session it came from,
//! which may be gone with its node. Every delivery context therefore
//! publishes through this one slot, which each new session fills.
//! (Measured: on a three-node cluster the old channel still took the
//! publish; the cluster outage test's `gated` task passes with and without
//! the slot, so the slot is a guarantee that does not lean on that.)

use std::sync::{Arc, RwLock};

use gust_shared::{
    amqp::AmqpError,
    broker::{BrokerFuture, Publish},
    message::TaskMessage,
};

/// The slot every delivery publishes through; empty until the first session opens.
#[derive(Default)]
pub struct CurrentPublisher {
    slot: RwLock<Option<Arc<dyn Publish>>>,
}

impl CurrentPublisher {
    /// Makes `publisher` (a fresh session's) the one every delivery publishes through from now on.
    pub fn replace(&self, publisher: Arc<dyn Publish>) {
        *self.slot.write().expect("publisher slot") = Some(publisher);
    }

    fn current(&self) -> Result<Arc<dyn Publish>, AmqpError> {
        self.slot.read().expect("publisher slot").clone().ok_or(AmqpError::Disconnected)
    }
}

impl Publish for CurrentPublisher {
    fn publish<'a>(&'a self, messages: &'a [TaskMessage]) -> BrokerFuture<'a> {
        let current = self.current();
        Box::pin(async move { current?.publish(messages).await })
    }

    fn publish_delayed<'a>(&'a self, message: &'a TaskMessage, delay_ms: u64) -> BrokerFuture<'a> {
        let current = self.current();
        Box::pin(async move { current?.publish_delayed(message, delay_ms).await })
    }

    fn publish_dead<'a>(&'a self, body: &'a [u8], reason: &'a str, detail: &'a str) -> BrokerFuture<'a> {
        let current = self.current();
        Box::pin(async move { current?.publish_dead(body, reason, detail).await })
    }
}
