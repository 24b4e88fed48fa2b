//! The worker's heartbeat: every interval it records that it is alive and
//! still running its tasks, so a hung or dead worker can be told apart from
//! a slow task.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use deadpool_postgres::Pool;
use gust_shared::{
    db::{heartbeats, task_instances::worker_tries},
    health::Health,
    settings::host_name,
};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// What a worker records once it is alive: the queues it consumes and the
/// operators it can run ([`crate::operators::advertised`]).
pub struct Advertised {
    /// Queues consumed.
    pub queues: Vec<String>,
    /// Operators, as a JSON list.
    pub operators: serde_json::Value,
}

/// Starts heartbeating for `hostname` every `interval` until aborted; the
/// first heartbeat also records what the worker `advertised`. Each round is
/// reported to `health`: the worker's liveness, and its database answer.
pub fn spawn(
    pool: Pool,
    hostname: String,
    running: Arc<Mutex<HashSet<Uuid>>>,
    interval: Duration,
    advertised: Advertised,
    health: Health,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut first = true;
        let mut ticks = tokio::time::interval(interval);
        loop {
            ticks.tick().await;
            health.tick();
            let ids: Vec<Uuid> = running.lock().expect("running set").iter().copied().collect();
            let result = async {
                let client = pool.get().await?;
                let count = i32::try_from(ids.len()).unwrap_or(i32::MAX);
                heartbeats::beat(&client, &hostname, "worker", &host_name(), count, first).await?;
                if first {
                    heartbeats::advertise(&client, &hostname, &advertised.queues, &advertised.operators).await?;
                }
                worker_tries::heartbeat(&client, &ids, &hostname).await?;
                Ok::<_, gust_shared::db::DbError>(())
            }
            .await;
            health.database(&result);
            match result {
                Ok(()) => first = false,
                Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
            }
        }
    })
}
