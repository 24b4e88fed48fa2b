//! Retention: deleting finished runs (with their task instances, tries,
//! logs and XComs), dead letters and event log records older than a cutoff,
//! in short transactions of one batch each, so the scheduler and the workers
//! never wait on it. `gust db clean` runs it once; a scheduler with
//! `GUST__RETENTION__MAX_AGE` runs it periodically ([`run_periodically`]),
//! one scheduler at a time. The statements are in [`crate::db::retention`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;

pub use crate::db::retention::TableCounts;
use crate::db::{
    retention::{self, Batch},
    signals::AdvisoryLock,
    DbError,
};

/// Times a batch that lost a deadlock or serialization race is tried again before the clean gives up.
const BATCH_ATTEMPTS: u32 = 3;

/// What to clean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanRequest {
    /// Rows older than this expire.
    pub before: DateTime<Utc>,
    /// Only these DAGs' runs, dead letters and event log records (empty: every DAG's, and records of no DAG).
    pub dag_ids: Vec<String>,
    /// Runs (or dead letters, or event log records) per transaction.
    pub batch_size: i64,
}

/// Rows the clean would delete, per table; deletes nothing.
pub async fn count(pool: &Pool, request: &CleanRequest) -> Result<TableCounts, DbError> {
    let client = pool.get().await?;
    retention::count_expired(&client, request.before, &request.dag_ids).await
}

/// Deletes everything that expired, a batch per transaction, calling
/// `on_batch` with each batch's counts; returns the totals.
pub async fn clean(
    pool: &Pool,
    request: &CleanRequest,
    mut on_batch: impl FnMut(&TableCounts),
) -> Result<TableCounts, DbError> {
    let mut total = TableCounts::default();
    for kind in Batch::ALL {
        loop {
            let batch = one_batch(pool, request, kind).await?;
            if batch.total() == 0 {
                break;
            }
            on_batch(&batch);
            total += batch;
        }
    }
    Ok(total)
}

/// One batch in a transaction of its own, tried again when it lost a deadlock
/// (an API change to the same run) or a serialization race.
async fn one_batch(pool: &Pool, request: &CleanRequest, kind: Batch) -> Result<TableCounts, DbError> {
    let mut attempt = 1;
    loop {
        match try_batch(pool, request, kind).await {
            Err(error) if attempt < BATCH_ATTEMPTS && is_lost_race(&error) => {
                tracing::info!(%error, attempt, "retention batch lost a race; trying it again");
                attempt += 1;
            }
            other => return other,
        }
    }
}

async fn try_batch(pool: &Pool, request: &CleanRequest, kind: Batch) -> Result<TableCounts, DbError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let counts = retention::delete_batch(&tx, kind, request.before, &request.dag_ids, request.batch_size).await?;
    tx.commit().await?;
    Ok(counts)
}

/// A deadlock or a serialization failure: the transaction rolled back and may simply be run again.
fn is_lost_race(error: &DbError) -> bool {
    matches!(error, DbError::Query(e) if e.code().is_some_and(|code| code.code() == "40P01" || code.code() == "40001"))
}

/// The scheduler's retention: every `interval`, the scheduler that holds the
/// retention lock (others skip that round) deletes what is older than
/// `max_age`. Runs until the task is dropped; failures are logged and the
/// next round tries again.
pub async fn run_periodically(pool: Pool, max_age: Duration, interval: Duration, batch_size: i64) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match clean_if_leader(&pool, max_age, batch_size).await {
            Ok(Some(deleted)) if deleted.total() > 0 => {
                tracing::info!(?deleted, max_age_secs = max_age.as_secs(), "retention deleted expired rows")
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "retention failed; trying again next round"),
        }
    }
}

/// One round: `None` when another scheduler holds the retention lock.
/// The lock is a transaction lock on a connection of its own that runs no
/// other statement (so it holds back no vacuum); it ends with that
/// transaction, also when the scheduler stops mid-clean.
async fn clean_if_leader(pool: &Pool, max_age: Duration, batch_size: i64) -> Result<Option<TableCounts>, DbError> {
    let mut holder = pool.get().await?;
    let lock = holder.transaction().await?;
    if !AdvisoryLock::Retention.try_lock_for_transaction(&lock).await? {
        return Ok(None);
    }
    let request = CleanRequest { before: cutoff_for(Utc::now(), max_age), dag_ids: Vec::new(), batch_size };
    let deleted = clean(pool, &request, |_| {}).await?;
    lock.commit().await?;
    Ok(Some(deleted))
}

/// `now - max_age`, or the earliest representable time when `max_age` reaches past it.
pub fn cutoff_for(now: DateTime<Utc>, max_age: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(max_age)
        .ok()
        .and_then(|age| now.checked_sub_signed(age))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}
