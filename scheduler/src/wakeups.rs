//! LISTEN/NOTIFY wake-ups: a finished task wakes the scheduler for its run
//! at once, instead of on the next timer tick.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use futures_util::StreamExt;
use gust_shared::db::{
    self,
    signals::{Signal, LISTEN_ALL},
    DbError,
};
use tokio::sync::Notify;
use tokio_postgres::AsyncMessage;

/// Pending wake-ups, coalesced: each run appears at most once.
#[derive(Default)]
pub struct Wakeups {
    pending: Mutex<Pending>,
    notify: Notify,
}

/// What woke the scheduler.
#[derive(Default, Debug)]
pub struct Pending {
    /// Runs with tasks that just finished: which ones, or `None` when the
    /// whole run must be looked at (cleared or marked by hand).
    pub runs: HashMap<i64, Option<HashSet<String>>>,
    /// A run was created somewhere.
    pub runs_queued: bool,
    /// A pool was created or changed: slots may have opened.
    pub pools_changed: bool,
    /// A DAG file was pushed or deleted over the API: rescan the DAG sources.
    pub dag_files_changed: bool,
    /// Files (`fileloc`s) to parse again, changed or not, before the rescan.
    pub reparse: HashSet<String>,
    /// DAGs with newly queued asset events.
    pub assets_queued: HashSet<String>,
    /// The listener lost its connection; notifications may have been missed.
    pub lost: bool,
}

impl Wakeups {
    /// Waits until something is pending, then takes it all.
    pub async fn next(&self) -> Pending {
        loop {
            let notified = self.notify.notified();
            {
                let mut pending = self.pending.lock().expect("wakeups lock");
                if !pending.runs.is_empty()
                    || pending.runs_queued
                    || pending.pools_changed
                    || pending.dag_files_changed
                    || !pending.reparse.is_empty()
                    || !pending.assets_queued.is_empty()
                    || pending.lost
                {
                    return std::mem::take(&mut *pending);
                }
            }
            notified.await;
        }
    }

    fn push(&self, update: impl FnOnce(&mut Pending)) {
        update(&mut self.pending.lock().expect("wakeups lock"));
        self.notify.notify_one();
    }
}

/// A live LISTEN connection feeding [`Wakeups`]; ends when the connection drops.
pub struct Listener {
    _client: tokio_postgres::Client,
    /// Resolves when the connection is lost.
    pub closed: tokio::task::JoinHandle<()>,
}

/// Opens a connection, LISTENs on gust's channels and feeds `wakeups`.
pub async fn listen(url: &str, wakeups: Arc<Wakeups>) -> Result<Listener, DbError> {
    let (client, mut connection) = db::connect_single(url).await?;
    let feed = wakeups.clone();
    let closed = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => match Signal::parse(n.channel(), n.payload()) {
                    Some(Signal::TasksFinished { run_pk, tasks }) => {
                        feed.push(|p| match (p.runs.entry(run_pk).or_insert_with(|| Some(HashSet::new())), tasks) {
                            (Some(pending), Some(tasks)) => pending.extend(tasks),
                            (entry, _) => *entry = None,
                        })
                    }
                    Some(Signal::RunQueued { .. }) => feed.push(|p| p.runs_queued = true),
                    Some(Signal::PoolsChanged { .. }) => feed.push(|p| p.pools_changed = true),
                    Some(Signal::DagFilesChanged { .. }) => feed.push(|p| p.dag_files_changed = true),
                    Some(Signal::ReparseFile { fileloc }) => feed.push(|p| {
                        p.reparse.insert(fileloc);
                    }),
                    Some(Signal::AssetsQueued { dag_id }) => feed.push(|p| {
                        p.assets_queued.insert(dag_id);
                    }),
                    None => tracing::warn!(
                        channel = n.channel(),
                        payload = n.payload(),
                        "ignored a notification gust does not send"
                    ),
                },
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN connection lost");
                    break;
                }
            }
        }
        feed.push(|p| p.lost = true);
    });
    client.batch_execute(LISTEN_ALL).await?;
    Ok(Listener { _client: client, closed })
}
