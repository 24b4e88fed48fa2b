//! Streaming a try's output into `task_logs` while it runs: lines are
//! batched (by count or a short delay) into one insert each, and capped in
//! size so a chatty task cannot fill the database.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use gust_shared::db::logs;
use tokio::{sync::mpsc, task::JoinHandle};
use uuid::Uuid;

const BATCH_LINES: usize = 500;
const BATCH_DELAY: Duration = Duration::from_millis(100);

/// Where a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The task's standard output.
    Stdout,
    /// The task's standard error.
    Stderr,
    /// A note from the worker itself (start, timeout, exit code).
    Gust,
}

impl Stream {
    fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::Gust => "gust",
        }
    }
}

/// Handle an operator writes log lines to; cheap to clone.
#[derive(Clone)]
pub struct LogSink {
    tx: mpsc::Sender<(DateTime<Utc>, Stream, String)>,
}

/// The background writer of a [`LogSink`]; `finish` flushes it.
pub struct LogWriter {
    handle: JoinHandle<()>,
}

impl LogSink {
    /// Starts a writer for try `try_number` of task instance `ti_id`.
    pub fn start(pool: Pool, ti_id: Uuid, try_number: i32, max_bytes: usize) -> (LogSink, LogWriter) {
        let (tx, rx) = mpsc::channel(4 * BATCH_LINES);
        let handle = tokio::spawn(write_batches(pool, ti_id, try_number, max_bytes, rx));
        (LogSink { tx }, LogWriter { handle })
    }

    /// Queues one line (waits if the writer is behind).
    pub async fn line(&self, stream: Stream, text: impl Into<String>) {
        let _ = self.tx.send((Utc::now(), stream, text.into())).await;
    }
}

impl LogWriter {
    /// Waits until every line queued before the last [`LogSink`] was dropped is stored.
    pub async fn finish(self) {
        let _ = self.handle.await;
    }
}

async fn write_batches(
    pool: Pool,
    ti_id: Uuid,
    try_number: i32,
    max_bytes: usize,
    mut rx: mpsc::Receiver<(DateTime<Utc>, Stream, String)>,
) {
    let mut written = 0usize;
    let mut truncated = false;
    let mut batch: Vec<(DateTime<Utc>, Stream, String)> = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.push(first);
        let deadline = tokio::time::Instant::now() + BATCH_DELAY;
        while batch.len() < BATCH_LINES {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(line)) => batch.push(line),
                Ok(None) | Err(_) => break,
            }
        }
        let mut keep: Vec<(DateTime<Utc>, &str, &str)> = Vec::with_capacity(batch.len());
        for (ts, stream, text) in &batch {
            if truncated && *stream != Stream::Gust {
                continue;
            }
            if *stream != Stream::Gust && written + text.len() > max_bytes {
                truncated = true;
                keep.push((
                    *ts,
                    Stream::Gust.as_str(),
                    "log truncated: this try wrote more than the worker's max_log_bytes",
                ));
                continue;
            }
            written += text.len();
            keep.push((*ts, stream.as_str(), text.as_str()));
        }
        let insert = || async { logs::append(&pool.get().await?, ti_id, try_number, &keep).await };
        let result = insert
            .retry(ExponentialBuilder::default().without_max_times().with_max_delay(Duration::from_secs(5)))
            .when(|e: &gust_shared::db::DbError| e.is_transient())
            .notify(|e, wait| tracing::warn!(error = %e, ?wait, "writing task log failed; retrying"))
            .await;
        if let Err(e) = result {
            tracing::error!(%ti_id, try_number, error = %e, lines = keep.len(), "task log lines could not be stored");
        }
        batch.clear();
    }
}
