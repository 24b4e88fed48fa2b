//! Streaming a try's output into `task_logs` while it runs: lines are
//! batched (by count or a short delay) into one insert each, and capped in
//! size so a chatty task cannot fill the database. Secrets of the connections
//! and variables a task uses are replaced by `***` before a line is stored.

use std::{sync::Arc, time::Duration};

use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use gust_shared::{
    connections,
    db::{logs, variables},
    message::TaskMessage,
    secrets::{variable_secrets, Secrets},
};
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
    masks: Arc<Vec<String>>,
}

/// What a masked secret reads as in a log.
const MASK: &str = "***";

/// Shortest secret masked (Airflow's `min_length_masked_secret`): masking every `1`
/// or `yes` in a log would hide more than it protects.
const MIN_MASKED_LEN: usize = 5;

/// The background writer of a [`LogSink`]; `finish` flushes it.
pub struct LogWriter {
    handle: JoinHandle<()>,
}

impl LogSink {
    /// Starts a writer for try `try_number` of task instance `ti_id`.
    pub fn start(pool: Pool, ti_id: Uuid, try_number: i32, max_bytes: usize) -> (LogSink, LogWriter) {
        let (tx, rx) = mpsc::channel(4 * BATCH_LINES);
        let handle = tokio::spawn(write_batches(pool, ti_id, try_number, max_bytes, rx));
        (LogSink { tx, masks: Arc::default() }, LogWriter { handle })
    }

    /// A sink that prints each line to standard output instead of storing it
    /// (`gust tasks test`, which records nothing): `HH:MM:SS [stream] text`.
    pub fn printing() -> (LogSink, LogWriter) {
        let (tx, mut rx) = mpsc::channel::<(DateTime<Utc>, Stream, String)>(4 * BATCH_LINES);
        let handle = tokio::spawn(async move {
            while let Some((ts, stream, text)) = rx.recv().await {
                println!("{} [{}] {text}", ts.format("%H:%M:%S"), stream.as_str());
            }
        });
        (LogSink { tx, masks: Arc::default() }, LogWriter { handle })
    }

    /// The same sink, replacing each of `masks` (longest first) by `***` in every line.
    pub fn with_masks(self, mut masks: Vec<String>) -> Self {
        masks.retain(|mask| mask.chars().count() >= MIN_MASKED_LEN);
        masks.sort_by_key(|mask| std::cmp::Reverse(mask.len()));
        masks.dedup();
        Self { masks: Arc::new(masks), ..self }
    }

    /// Queues one line, its secrets masked (waits if the writer is behind).
    pub async fn line(&self, stream: Stream, text: impl Into<String>) {
        let mut text = text.into();
        for mask in self.masks.iter() {
            if text.contains(mask.as_str()) {
                text = text.replace(mask.as_str(), MASK);
            }
        }
        let _ = self.tx.send((Utc::now(), stream, text)).await;
    }
}

/// The secrets a task's log must not show, as Airflow masks them: the [`variable_secrets`] (whole
/// values of secret-named variables, JSON fields under secret names) and the passwords and secret
/// extras of connections that its rendered arguments or environment contain (a connection also
/// when an argument is its id, as `conn_id` is). They are looked for in the arguments' text, not
/// their JSON, so a secret with a quote or a backslash is found too. A failure to load them is
/// logged and masks what was loaded.
pub async fn secrets_to_mask(pool: &Pool, secrets: Option<&Secrets>, message: &TaskMessage) -> Vec<String> {
    let texts = task_texts(message);
    let appears = |secret: &str| secret.len() >= MIN_MASKED_LEN && texts.iter().any(|text| text.contains(secret));
    let mut masks = Vec::new();
    let client = match pool.get().await {
        Ok(client) => client,
        Err(e) => {
            tracing::warn!(error = %e, "cannot load secrets to mask in the task log");
            return masks;
        }
    };
    match variables::all_values(&client).await {
        Ok(all) => {
            for (key, value) in all {
                masks.extend(variable_secrets(&key, &value).into_iter().filter(|secret| appears(secret)));
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot load variables to mask in the task log"),
    }
    match connections::for_templates(&client, secrets).await {
        Ok(all) => {
            for (id, connection) in all {
                let Ok(connection) = connection else { continue };
                let values = connection.secret_values();
                if texts.contains(&id) || values.iter().any(|value| appears(value)) {
                    masks.extend(values);
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot load connections to mask in the task log"),
    }
    masks
}

/// Every string of the task's operator arguments (at any depth) and of its environment.
fn task_texts(message: &TaskMessage) -> Vec<String> {
    fn strings(value: serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::String(text) => out.push(text),
            serde_json::Value::Array(items) => items.into_iter().for_each(|item| strings(item, out)),
            serde_json::Value::Object(fields) => fields.into_iter().for_each(|(_, field)| strings(field, out)),
            _ => {}
        }
    }
    let mut texts = Vec::new();
    strings(serde_json::to_value(&message.operator).unwrap_or_default(), &mut texts);
    texts.extend(message.env.values().cloned());
    texts
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
