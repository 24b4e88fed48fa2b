//! The statements of `gust db clean` and the scheduler's retention
//! ([`crate::retention`] runs them in batches): what has expired, counted or
//! deleted a batch at a time.
//!
//! A run has expired when it finished (`success` or `failed`) before the
//! cutoff, except the latest scheduled run of each DAG: the scheduler creates
//! the next scheduled run after it, so deleting it would recreate old runs.
//! Queued and running runs are never touched. A batch locks its runs with
//! `FOR UPDATE SKIP LOCKED`, so a run that an API change holds is left for
//! the next pass and no scheduler ever waits on the clean.
//!
//! Children go first, in the order of the foreign keys (`task_logs`, `xcom`,
//! `task_instance_tries` → `task_instances` → `dag_runs`), each its own
//! statement so every table's count is known; the cascades then find
//! nothing left. Dead letters and event log records have no parent: they
//! expire by the time they were recorded.

use chrono::{DateTime, Utc};

use super::{DbError, GenericClient};

/// The predicate of an expired run `r`: `$1` the cutoff, `$2` the DAG ids (empty: every DAG).
macro_rules! expired_run {
    () => {
        r#"r.state IN ('success', 'failed')
  AND coalesce(r.end_date, r.start_date, r.queued_at) < $1
  AND (cardinality($2::text[]) = 0 OR r.dag_id = ANY($2::text[]))
  AND NOT (r.run_type = 'scheduled' AND r.logical_date IS NOT DISTINCT FROM
      (SELECT max(m.logical_date) FROM dag_runs m WHERE m.dag_id = r.dag_id AND m.run_type = 'scheduled'))"#
    };
}

/// The predicate of an expired dead letter: `$1` the cutoff, `$2` the DAG ids (empty: every DAG).
macro_rules! expired_dead_letter {
    () => {
        "received_at < $1 AND (cardinality($2::text[]) = 0 OR dag_id = ANY($2::text[]))"
    };
}

/// The predicate of an expired event log record: `$1` the cutoff, `$2` the DAG ids (empty: every DAG).
macro_rules! expired_event {
    () => {
        "dttm < $1 AND (cardinality($2::text[]) = 0 OR dag_id = ANY($2::text[]))"
    };
}

/// Rows per table, counted or deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableCounts {
    /// `dag_runs`.
    pub dag_runs: u64,
    /// `task_instances`.
    pub task_instances: u64,
    /// `task_instance_tries`.
    pub task_instance_tries: u64,
    /// `task_logs`.
    pub task_logs: u64,
    /// `xcom`.
    pub xcom: u64,
    /// `dead_letters`.
    pub dead_letters: u64,
    /// `event_log`.
    pub event_log: u64,
}

impl TableCounts {
    /// Each table's name with its count, in deletion order.
    pub fn tables(&self) -> [(&'static str, u64); 7] {
        [
            ("dag_runs", self.dag_runs),
            ("task_instances", self.task_instances),
            ("task_instance_tries", self.task_instance_tries),
            ("task_logs", self.task_logs),
            ("xcom", self.xcom),
            ("dead_letters", self.dead_letters),
            ("event_log", self.event_log),
        ]
    }

    /// The sum over every table.
    pub fn total(&self) -> u64 {
        self.tables().iter().map(|(_, n)| n).sum()
    }
}

impl std::ops::AddAssign for TableCounts {
    fn add_assign(&mut self, other: Self) {
        self.dag_runs += other.dag_runs;
        self.task_instances += other.task_instances;
        self.task_instance_tries += other.task_instance_tries;
        self.task_logs += other.task_logs;
        self.xcom += other.xcom;
        self.dead_letters += other.dead_letters;
        self.event_log += other.event_log;
    }
}

/// Counts what a clean with this cutoff and these DAGs would delete, deleting nothing.
const COUNT_EXPIRED: &str = concat!(
    "WITH runs AS (SELECT r.id FROM dag_runs r WHERE ",
    expired_run!(),
    r#"),
tis AS (SELECT id FROM task_instances WHERE run_pk IN (SELECT id FROM runs))
SELECT (SELECT count(*) FROM runs),
    (SELECT count(*) FROM tis),
    (SELECT count(*) FROM task_instance_tries WHERE ti_id IN (SELECT id FROM tis)),
    (SELECT count(*) FROM task_logs WHERE ti_id IN (SELECT id FROM tis)),
    (SELECT count(*) FROM xcom WHERE ti_id IN (SELECT id FROM tis)),
    (SELECT count(*) FROM dead_letters WHERE "#,
    expired_dead_letter!(),
    "),\n    (SELECT count(*) FROM event_log WHERE ",
    expired_event!(),
    ")"
);

/// Rows a clean before `cutoff` of `dag_ids` (empty: every DAG) would delete, per table.
pub async fn count_expired(
    db: &impl GenericClient,
    cutoff: DateTime<Utc>,
    dag_ids: &[String],
) -> Result<TableCounts, DbError> {
    let row = db.query_one(COUNT_EXPIRED, &[&cutoff, &dag_ids]).await?;
    let count = |i: usize| u64::try_from(row.get::<_, i64>(i)).unwrap_or(0);
    Ok(TableCounts {
        dag_runs: count(0),
        task_instances: count(1),
        task_instance_tries: count(2),
        task_logs: count(3),
        xcom: count(4),
        dead_letters: count(5),
        event_log: count(6),
    })
}

/// Locks up to `$3` expired runs that nobody else holds, oldest id first.
const LOCK_EXPIRED_RUNS: &str = concat!(
    "SELECT r.id FROM dag_runs r WHERE ",
    expired_run!(),
    "\nORDER BY r.id LIMIT $3 FOR UPDATE OF r SKIP LOCKED"
);

/// The task instances of the runs `$1`.
macro_rules! tis_of_runs {
    () => {
        "(SELECT id FROM task_instances WHERE run_pk = ANY($1))"
    };
}

const DELETE_LOGS: &str = concat!("DELETE FROM task_logs WHERE ti_id IN ", tis_of_runs!());
const DELETE_XCOM: &str = concat!("DELETE FROM xcom WHERE ti_id IN ", tis_of_runs!());
const DELETE_TRIES: &str = concat!("DELETE FROM task_instance_tries WHERE ti_id IN ", tis_of_runs!());
const DELETE_TIS: &str = "DELETE FROM task_instances WHERE run_pk = ANY($1)";
const DELETE_RUNS: &str = "DELETE FROM dag_runs WHERE id = ANY($1)";

/// Locks a batch of expired runs (`params`: cutoff, DAG ids, batch size) and
/// deletes them with their task instances, tries, logs and XComs.
async fn delete_run_batch(
    db: &impl GenericClient,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<TableCounts, DbError> {
    let ids: Vec<i64> = db.query(LOCK_EXPIRED_RUNS, params).await?.iter().map(|r| r.get(0)).collect();
    if ids.is_empty() {
        return Ok(TableCounts::default());
    }
    Ok(TableCounts {
        task_logs: db.execute(DELETE_LOGS, &[&ids]).await?,
        xcom: db.execute(DELETE_XCOM, &[&ids]).await?,
        task_instance_tries: db.execute(DELETE_TRIES, &[&ids]).await?,
        task_instances: db.execute(DELETE_TIS, &[&ids]).await?,
        dag_runs: db.execute(DELETE_RUNS, &[&ids]).await?,
        ..TableCounts::default()
    })
}

const DELETE_DEAD_LETTERS: &str = concat!(
    "DELETE FROM dead_letters WHERE id IN (SELECT id FROM dead_letters WHERE ",
    expired_dead_letter!(),
    " ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)"
);

const DELETE_EVENTS: &str = concat!(
    "DELETE FROM event_log WHERE id IN (SELECT id FROM event_log WHERE ",
    expired_event!(),
    " ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)"
);

/// What one batch deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batch {
    /// Expired runs with their task instances, tries, logs and XComs.
    Runs,
    /// Dead letters received before the cutoff.
    DeadLetters,
    /// Event log records written before the cutoff.
    EventLog,
}

impl Batch {
    /// Every kind, in the order a clean deletes them.
    pub const ALL: [Batch; 3] = [Batch::Runs, Batch::DeadLetters, Batch::EventLog];
}

/// Deletes one batch of at most `batch_size` rows of `batch` (runs, with
/// their children) older than `cutoff`, of `dag_ids` (empty: every DAG). Run
/// it in a transaction of its own (its locks last until the commit); the
/// counts are zero when nothing is left.
pub async fn delete_batch(
    db: &impl GenericClient,
    batch: Batch,
    cutoff: DateTime<Utc>,
    dag_ids: &[String],
    batch_size: i64,
) -> Result<TableCounts, DbError> {
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&cutoff, &dag_ids, &batch_size];
    Ok(match batch {
        Batch::Runs => delete_run_batch(db, &params).await?,
        Batch::DeadLetters => {
            TableCounts { dead_letters: db.execute(DELETE_DEAD_LETTERS, &params).await?, ..TableCounts::default() }
        }
        Batch::EventLog => {
            TableCounts { event_log: db.execute(DELETE_EVENTS, &params).await?, ..TableCounts::default() }
        }
    })
}
