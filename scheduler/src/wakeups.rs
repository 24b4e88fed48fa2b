//! LISTEN/NOTIFY wake-ups: a finished task wakes the scheduler for its run
//! at once, instead of on the next timer tick.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use futures_util::StreamExt;
use gust_shared::db::{self, pools::POOLS_CHANGED_CHANNEL, DbError, RUN_QUEUED_CHANNEL, TASK_FINISHED_CHANNEL};
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
                if !pending.runs.is_empty() || pending.runs_queued || pending.pools_changed || pending.lost {
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

/// Reads a task-finished payload: `run_pk:task,task,…` names the tasks that
/// finished (task ids never hold a comma), a bare `run_pk` asks for a pass over the whole run.
fn parse_task_finished(payload: &str) -> Option<(i64, Option<Vec<String>>)> {
    match payload.split_once(':') {
        Some((run, tasks)) => Some((run.parse().ok()?, Some(tasks.split(',').map(str::to_string).collect()))),
        None => Some((payload.parse().ok()?, None)),
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
                Ok(AsyncMessage::Notification(n)) if n.channel() == TASK_FINISHED_CHANNEL => {
                    if let Some((run_pk, tasks)) = parse_task_finished(n.payload()) {
                        feed.push(|p| match (p.runs.entry(run_pk).or_insert_with(|| Some(HashSet::new())), tasks) {
                            (Some(pending), Some(tasks)) => pending.extend(tasks),
                            (entry, _) => *entry = None,
                        });
                    }
                }
                Ok(AsyncMessage::Notification(n)) if n.channel() == RUN_QUEUED_CHANNEL => {
                    feed.push(|p| p.runs_queued = true)
                }
                Ok(AsyncMessage::Notification(n)) if n.channel() == POOLS_CHANGED_CHANNEL => {
                    feed.push(|p| p.pools_changed = true)
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN connection lost");
                    break;
                }
            }
        }
        feed.push(|p| p.lost = true);
    });
    client
        .batch_execute(&format!(
            "LISTEN {TASK_FINISHED_CHANNEL}; LISTEN {RUN_QUEUED_CHANNEL}; LISTEN {POOLS_CHANGED_CHANNEL};"
        ))
        .await?;
    Ok(Listener { _client: client, closed })
}

#[cfg(test)]
mod tests {
    use super::parse_task_finished;

    #[test]
    fn task_finished_payload_names_one_or_many_tasks_or_the_whole_run() {
        assert_eq!(parse_task_finished("42:extract"), Some((42, Some(vec!["extract".to_string()]))));
        assert_eq!(
            parse_task_finished("7:a.b,c-d,e_f"),
            Some((7, Some(vec!["a.b".to_string(), "c-d".to_string(), "e_f".to_string()])))
        );
        assert_eq!(parse_task_finished("42"), Some((42, None)));
        assert_eq!(parse_task_finished("x:extract"), None);
        assert_eq!(parse_task_finished(""), None);
    }
}
