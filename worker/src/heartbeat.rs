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
    settings::host_name,
};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Starts heartbeating for `hostname` every `interval` until aborted.
pub fn spawn(pool: Pool, hostname: String, running: Arc<Mutex<HashSet<Uuid>>>, interval: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut first = true;
        let mut ticks = tokio::time::interval(interval);
        loop {
            ticks.tick().await;
            let ids: Vec<Uuid> = running.lock().expect("running set").iter().copied().collect();
            let result = async {
                let client = pool.get().await?;
                let count = i32::try_from(ids.len()).unwrap_or(i32::MAX);
                heartbeats::beat(&client, &hostname, "worker", &host_name(), count, first).await?;
                worker_tries::heartbeat(&client, &ids, &hostname).await?;
                Ok::<_, gust_shared::db::DbError>(())
            }
            .await;
            match result {
                Ok(()) => first = false,
                Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
            }
        }
    })
}
