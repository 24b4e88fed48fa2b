//! A wiretap on a stack's tasks exchange: every task message published for a
//! queue is also routed to a private queue of the test, which counts the
//! publishes of each try. The workers' own queue is untouched (a direct
//! exchange copies a message to every queue bound with its routing key), so
//! the tap takes nothing away from them.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use futures_util::StreamExt;
use gust_shared::{
    amqp::{self, Topology},
    message::TaskMessage,
    settings::Settings,
};
use lapin::{
    options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions},
    types::FieldTable,
    Connection,
};
use tokio::task::JoinHandle;

/// `(task instance id, try number)`: one try of one task instance.
pub type TryKey = (uuid::Uuid, i32);

/// Counts the task messages published to one queue's routing key while it lives.
pub struct Tap {
    seen: Arc<Mutex<BTreeMap<TryKey, usize>>>,
    unreadable: Arc<Mutex<usize>>,
    connection: Connection,
    reader: JoinHandle<()>,
}

impl Tap {
    /// Binds an exclusive, auto-deleted queue of its own to the tasks exchange
    /// of `settings`' namespace with routing key `queue`, and starts counting.
    /// Declares the exchange and work queue as gust does, so it can be set up
    /// before any gust process ran; messages published before this returns are
    /// not seen.
    pub async fn start(settings: &Settings, queue: &str) -> Tap {
        let connection = amqp::connect_to(&settings.amqp, "gust-tests-tap").await.expect("connecting to RabbitMQ");
        let channel = connection.create_channel().await.expect("opening a channel");
        let topology = Topology::from_settings(&settings.amqp);
        topology.declare_work_queue(&channel, queue).await.expect("declaring the tasks exchange and work queue");
        let tap = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions { exclusive: true, auto_delete: true, ..QueueDeclareOptions::default() },
                FieldTable::default(),
            )
            .await
            .expect("declaring the tap's queue");
        channel
            .queue_bind(
                tap.name().clone(),
                topology.tasks_exchange().into(),
                queue.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("binding the tap to the tasks exchange");
        let mut consumer = channel
            .basic_consume(
                tap.name().clone(),
                "gust-tests-tap".into(),
                BasicConsumeOptions { no_ack: true, exclusive: true, ..BasicConsumeOptions::default() },
                FieldTable::default(),
            )
            .await
            .expect("consuming the tap's queue");
        let seen = Arc::new(Mutex::new(BTreeMap::new()));
        let unreadable = Arc::new(Mutex::new(0));
        let (counts, bad) = (seen.clone(), unreadable.clone());
        let reader = tokio::spawn(async move {
            let _channel = channel;
            while let Some(Ok(delivery)) = consumer.next().await {
                match TaskMessage::from_bytes(&delivery.data) {
                    Ok(message) => {
                        *counts.lock().unwrap().entry((message.ti_id, message.try_number)).or_insert(0) += 1;
                    }
                    Err(_) => *bad.lock().unwrap() += 1,
                }
            }
        });
        Tap { seen, unreadable, connection, reader }
    }

    /// How many times each try was published so far.
    pub fn publishes(&self) -> BTreeMap<TryKey, usize> {
        assert!(!self.reader.is_finished(), "the tap's consumer stopped (connection lost?)");
        self.seen.lock().unwrap().clone()
    }

    /// Messages that were not task messages.
    pub fn unreadable(&self) -> usize {
        *self.unreadable.lock().unwrap()
    }

    /// Stops counting and closes the connection, which deletes the tap's queue.
    pub async fn close(self) {
        self.reader.abort();
        let _ = self.connection.close(200, "done".into()).await;
    }
}
