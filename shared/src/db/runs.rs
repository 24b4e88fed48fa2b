//! Queries on `dag_runs`. Every state change is a compare-and-set on the
//! `from` states of one [`RunTransition`].

use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::{
    filters::{Conditions, TextMatch, TimeRange},
    signals::{AdvisoryLock, Signal, RUN_QUEUED_CHANNEL},
    task_instances::listing::DurationRange,
    DbError, GenericClient,
};
use crate::state::{RunState, RunTransition};

/// A DAG run as stored.
#[derive(Debug, Clone)]
pub struct DagRunRow {
    /// Primary key.
    pub id: i64,
    /// The DAG.
    pub dag_id: String,
    /// Unique per DAG, e.g. `manual__2026-01-01T00:00:00+00:00`.
    pub run_id: String,
    /// `manual`, `scheduled` or `backfill`.
    pub run_type: String,
    /// Start of the data interval (Airflow's logical date), if any.
    pub logical_date: Option<DateTime<Utc>>,
    /// Data interval start.
    pub data_interval_start: Option<DateTime<Utc>>,
    /// Data interval end.
    pub data_interval_end: Option<DateTime<Utc>>,
    /// Earliest time the run may start.
    pub run_after: DateTime<Utc>,
    /// Trigger configuration.
    pub conf: serde_json::Value,
    /// Run state.
    pub state: RunState,
    /// The DAG version the run's tasks come from.
    pub dag_version_id: i64,
    /// When it was created.
    pub queued_at: DateTime<Utc>,
    /// When it started running.
    pub start_date: Option<DateTime<Utc>>,
    /// When it finished.
    pub end_date: Option<DateTime<Utc>>,
    /// Who created it (`rest_api`, `scheduler`).
    pub triggered_by: String,
    /// Free-text note.
    pub note: Option<String>,
    /// The backfill the run belongs to, if any.
    pub backfill_id: Option<i64>,
    /// The user who triggered it (API, UI, CLI or backfill); `None` for scheduled runs.
    pub triggering_user_name: Option<String>,
    /// The partition the run covers (Airflow's partitioned timetables; gust's are not, so `None`).
    pub partition_key: Option<String>,
    /// The date of that partition.
    pub partition_date: Option<DateTime<Utc>>,
}

/// What is needed to create a run.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    /// The DAG.
    pub dag_id: &'a str,
    /// Unique per DAG.
    pub run_id: &'a str,
    /// `manual` or `scheduled`.
    pub run_type: &'a str,
    /// Logical date, if any.
    pub logical_date: Option<DateTime<Utc>>,
    /// Data interval, if any.
    pub data_interval: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// Trigger configuration.
    pub conf: &'a serde_json::Value,
    /// DAG version the run is pinned to.
    pub dag_version_id: i64,
    /// `rest_api` or `scheduler`.
    pub triggered_by: &'a str,
    /// The user who triggered it; `None` for scheduled runs.
    pub triggering_user_name: Option<&'a str>,
}

/// Why a run could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateRunError {
    /// A run with that `run_id` or logical date exists.
    #[error("a run of DAG `{dag_id}` with this {what} already exists")]
    Duplicate {
        /// The DAG.
        dag_id: String,
        /// `run_id` or `logical_date`.
        what: &'static str,
    },
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

const RUN_COLUMNS: &str = r#"
id, dag_id, run_id, run_type, logical_date, data_interval_start, data_interval_end,
run_after, conf, state, dag_version_id, queued_at, start_date, end_date, triggered_by, note, backfill_id,
triggering_user_name, partition_key, partition_date"#;

fn run_row(row: &Row) -> Result<DagRunRow, DbError> {
    let state: String = row.get("state");
    Ok(DagRunRow {
        id: row.get("id"),
        dag_id: row.get("dag_id"),
        run_id: row.get("run_id"),
        run_type: row.get("run_type"),
        logical_date: row.get("logical_date"),
        data_interval_start: row.get("data_interval_start"),
        data_interval_end: row.get("data_interval_end"),
        run_after: row.get("run_after"),
        conf: row.get("conf"),
        state: RunState::parse(&state).ok_or_else(|| DbError::Corrupt(format!("run state `{state}`")))?,
        dag_version_id: row.get("dag_version_id"),
        queued_at: row.get("queued_at"),
        start_date: row.get("start_date"),
        end_date: row.get("end_date"),
        triggered_by: row.get("triggered_by"),
        note: row.get("note"),
        backfill_id: row.get("backfill_id"),
        triggering_user_name: row.get("triggering_user_name"),
        partition_key: row.get("partition_key"),
        partition_date: row.get("partition_date"),
    })
}

/// Creates a run in state `queued` and wakes the schedulers (on commit).
pub async fn insert(db: &impl GenericClient, run: &NewRun<'_>) -> Result<DagRunRow, CreateRunError> {
    let sql = format!(
        r#"
INSERT INTO dag_runs (dag_id, run_id, run_type, logical_date, data_interval_start, data_interval_end, conf,
    state, dag_version_id, triggered_by, triggering_user_name)
VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, $9, $10)
RETURNING {RUN_COLUMNS}"#
    );
    let (start, end) = run.data_interval.unzip();
    let result = db
        .query_one(
            &sql,
            &[
                &run.dag_id,
                &run.run_id,
                &run.run_type,
                &run.logical_date,
                &start,
                &end,
                &run.conf,
                &run.dag_version_id,
                &run.triggered_by,
                &run.triggering_user_name,
            ],
        )
        .await;
    let row = match result {
        Ok(row) => row,
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
            let what = match e.as_db_error().and_then(|d| d.constraint()) {
                Some("dag_runs_logical_date") => "logical_date",
                _ => "run_id",
            };
            return Err(CreateRunError::Duplicate { dag_id: run.dag_id.to_string(), what });
        }
        Err(e) => return Err(DbError::from(e).into()),
    };
    Signal::run_queued(db, run.dag_id).await?;
    Ok(run_row(&row)?)
}

/// One run by DAG and run id.
pub async fn get(db: &impl GenericClient, dag_id: &str, run_id: &str) -> Result<Option<DagRunRow>, DbError> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM dag_runs WHERE dag_id = $1 AND run_id = $2");
    db.query_opt(&sql, &[&dag_id, &run_id]).await?.as_ref().map(run_row).transpose()
}

/// A page of one DAG's runs, newest first, and the total count.
pub async fn list(
    db: &impl GenericClient,
    dag_id: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<DagRunRow>, i64), DbError> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM dag_runs WHERE dag_id = $1 ORDER BY id DESC LIMIT $2 OFFSET $3");
    let rows = db.query(&sql, &[&dag_id, &limit, &offset]).await?;
    let total: i64 = db.query_one("SELECT count(*) FROM dag_runs WHERE dag_id = $1", &[&dag_id]).await?.get(0);
    Ok((rows.iter().map(run_row).collect::<Result<_, _>>()?, total))
}

/// Which runs [`list_filtered`] returns; an unset field or an empty list matches every run.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// The DAG (`None`: every DAG).
    pub dag_id: Option<String>,
    /// Any of these states.
    pub states: Vec<String>,
    /// Any of these run types.
    pub run_types: Vec<String>,
    /// The logical date.
    pub logical_date: TimeRange,
    /// When the run started.
    pub start_date: TimeRange,
    /// When the run ended.
    pub end_date: TimeRange,
    /// When the run became due.
    pub run_after: TimeRange,
    /// Text matches on the DAG id; each must hold.
    pub dag_id_matches: Vec<TextMatch>,
    /// Text matches on the run id; each must hold.
    pub run_id_matches: Vec<TextMatch>,
    /// Any of these DAGs (with `dag_id`, both must hold).
    pub dag_ids: Vec<String>,
    /// Bounds on the duration in seconds (a run that has not ended has none, and matches no bound).
    pub duration: DurationRange,
    /// A substring of the run's `conf` as JSON text (Airflow's `conf_contains`), matched literally.
    pub conf_contains: Option<String>,
    /// The partition date (a run without one matches no bound).
    pub partition_date: TimeRange,
    /// Text matches on the partition key (a run without one matches none); each must hold.
    pub partition_key_matches: Vec<TextMatch>,
    /// Text matches on who triggered the run (a scheduled run matches none); each must hold.
    pub triggering_user_name_matches: Vec<TextMatch>,
}

/// The fields a run listing may be ordered by (Airflow's names) and their SQL;
/// only these static strings ever reach an `ORDER BY`.
pub const ORDER_FIELDS: &[(&str, &str)] = &[
    ("id", "id"),
    ("state", "state"),
    ("dag_id", "dag_id"),
    ("run_id", "run_id"),
    ("dag_run_id", "run_id"),
    ("run_type", "run_type"),
    ("logical_date", "logical_date"),
    ("run_after", "run_after"),
    ("queued_at", "queued_at"),
    ("start_date", "start_date"),
    ("end_date", "end_date"),
    ("duration", "(end_date - start_date)"),
    ("conf", "conf::text"),
];

/// The order of a listing that names none: newest first.
pub const DEFAULT_ORDER: &str = "id DESC";

/// Appended to every listing's order so pages are stable: the primary key.
pub const ORDER_TIEBREAK: &str = "id DESC";

/// A page of the runs `filter` keeps, ordered by `order_by`, and how many it
/// keeps in all. `order_by` must be built from [`ORDER_FIELDS`] only.
pub async fn list_filtered(
    db: &impl GenericClient,
    filter: &RunFilter,
    order_by: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<DagRunRow>, i64), DbError> {
    let mut c = Conditions::default();
    c.push_opt("dag_id = $?", filter.dag_id.clone());
    c.push_any("state = ANY($?)", &filter.states);
    c.push_any("run_type = ANY($?)", &filter.run_types);
    c.push_range("logical_date", &filter.logical_date);
    c.push_range("start_date", &filter.start_date);
    c.push_range("end_date", &filter.end_date);
    c.push_range("run_after", &filter.run_after);
    for text in &filter.dag_id_matches {
        c.push_match("dag_id", Some(text));
    }
    for text in &filter.run_id_matches {
        c.push_match("run_id", Some(text));
    }
    c.push_any("dag_id = ANY($?)", &filter.dag_ids);
    c.push_range("partition_date", &filter.partition_date);
    for text in &filter.partition_key_matches {
        c.push_match("partition_key", Some(text));
    }
    for text in &filter.triggering_user_name_matches {
        c.push_match("triggering_user_name", Some(text));
    }
    macro_rules! duration {
        ($operator:literal) => {
            concat!("extract(epoch FROM end_date - start_date)::float8 ", $operator, " $?")
        };
    }
    c.push_opt(duration!(">="), filter.duration.gte);
    c.push_opt(duration!(">"), filter.duration.gt);
    c.push_opt(duration!("<="), filter.duration.lte);
    c.push_opt(duration!("<"), filter.duration.lt);
    c.push_opt(r"conf::text LIKE '%' || $? || '%'", filter.conf_contains.as_deref().map(super::filters::like_literal));
    let (rows, total) = c.page(db, RUN_COLUMNS, "dag_runs", order_by, limit, offset).await?;
    Ok((rows.iter().map(run_row).collect::<Result<_, _>>()?, total))
}

/// Locks a run for a change by hand, waiting for a scheduler that holds it;
/// `None` when it does not exist.
pub async fn lock(db: &impl GenericClient, id: i64) -> Result<Option<DagRunRow>, DbError> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM dag_runs WHERE id = $1 FOR UPDATE");
    db.query_opt(&sql, &[&id]).await?.as_ref().map(run_row).transpose()
}

/// Sets a run's state by hand (Airflow's `set_dag_run_state`) if it still is
/// `from`, as Airflow's `DagRun.set_state` does: `queued` starts it over (new
/// `queued_at`, no start or end date), `success` and `failed` set the end date.
/// Wakes the schedulers on commit (a queued run to start, or a freed
/// `max_active_runs` slot) and completes the run's backfill when this ended
/// its last live run. `None` when the run was no longer `from`.
pub async fn set_state(
    db: &impl GenericClient,
    id: i64,
    from: RunState,
    to: RunState,
) -> Result<Option<DagRunRow>, DbError> {
    let sql = format!(
        r#"
UPDATE dag_runs SET state = $3,
    queued_at = CASE WHEN $3 = 'queued' THEN now() ELSE queued_at END,
    start_date = CASE WHEN $3 = 'queued' THEN NULL ELSE start_date END,
    end_date = CASE WHEN $3 IN ('success', 'failed') THEN now() END
WHERE id = $1 AND state = $2 RETURNING {RUN_COLUMNS}"#
    );
    debug_assert!(RunTransition::SetByHand.from().contains(&from) && RunTransition::SetByHand.to().contains(&to));
    let Some(row) = db.query_opt(&sql, &[&id, &from.as_str(), &to.as_str()]).await? else { return Ok(None) };
    let run = run_row(&row)?;
    Signal::run_queued(db, &run.dag_id).await?;
    if let (true, Some(backfill_id)) = (to.is_finished(), run.backfill_id) {
        super::backfills::complete_if_done(db, backfill_id).await?;
    }
    Ok(Some(run))
}

/// Which runs of one DAG a partition clear selects (Airflow's selectors, exactly one of them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PartitionSelector<'a> {
    /// The run with this run id, partitioned or not.
    RunId(&'a str),
    /// The runs of this partition key.
    Key(&'a str),
    /// The partitioned runs whose partition date lies in this window (bounds inclusive; at least one is set).
    Dates {
        /// Earliest partition date.
        start: Option<DateTime<Utc>>,
        /// Latest partition date.
        end: Option<DateTime<Utc>>,
    },
}

/// The runs `selector` picks, locked for a change by hand, by partition date and run id.
pub async fn partition_runs(
    db: &impl GenericClient,
    dag_id: &str,
    selector: PartitionSelector<'_>,
) -> Result<Vec<DagRunRow>, DbError> {
    const ORDER: &str = "ORDER BY partition_date, run_id FOR UPDATE";
    let rows = match selector {
        PartitionSelector::RunId(run_id) => {
            let sql = format!("SELECT {RUN_COLUMNS} FROM dag_runs WHERE dag_id = $1 AND run_id = $2 {ORDER}");
            db.query(&sql, &[&dag_id, &run_id]).await?
        }
        PartitionSelector::Key(key) => {
            let sql = format!("SELECT {RUN_COLUMNS} FROM dag_runs WHERE dag_id = $1 AND partition_key = $2 {ORDER}");
            db.query(&sql, &[&dag_id, &key]).await?
        }
        PartitionSelector::Dates { start, end } => {
            let sql = format!(
                r#"
SELECT {RUN_COLUMNS} FROM dag_runs
WHERE dag_id = $1 AND (partition_key IS NOT NULL OR partition_date IS NOT NULL)
    AND ($2::timestamptz IS NULL OR partition_date >= $2) AND ($3::timestamptz IS NULL OR partition_date <= $3)
{ORDER}"#
            );
            db.query(&sql, &[&dag_id, &start, &end]).await?
        }
    };
    rows.iter().map(run_row).collect()
}

/// Clears a run's partition fields (Airflow's `clearPartitions`).
pub async fn reset_partition(db: &impl GenericClient, id: i64) -> Result<(), DbError> {
    db.execute("UPDATE dag_runs SET partition_key = NULL, partition_date = NULL WHERE id = $1", &[&id]).await?;
    Ok(())
}

/// Sets when a run just created was due (a trigger's `run_after`, in the past).
pub async fn set_run_after(db: &impl GenericClient, id: i64, run_after: DateTime<Utc>) -> Result<(), DbError> {
    db.execute("UPDATE dag_runs SET run_after = $2 WHERE id = $1", &[&id, &run_after]).await?;
    Ok(())
}

/// Sets (or, with `None`, removes) a run's note.
pub async fn set_note(db: &impl GenericClient, id: i64, note: Option<&str>) -> Result<(), DbError> {
    db.execute("UPDATE dag_runs SET note = $2 WHERE id = $1", &[&id, &note]).await?;
    Ok(())
}

/// A task instance still at work (queued or running), which keeps its run or DAG from being deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusyTask {
    /// The run.
    pub run_id: String,
    /// The task.
    pub task_id: String,
    /// -1 unless mapped.
    pub map_index: i32,
    /// `queued` or `running`.
    pub state: String,
}

/// What a delete did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deletion {
    /// The rows are gone (on commit).
    Deleted,
    /// Nothing by that key exists.
    NotFound,
    /// Nothing was deleted: these task instances are still queued or running.
    Busy(Vec<BusyTask>),
}

/// Locks the unfinished task instances `sql` selects (so no dispatch, claim or
/// scheduling pass moves them until the transaction ends) and returns the
/// queued or running ones among them.
pub(super) async fn lock_busy_tasks(
    db: &impl GenericClient,
    sql: &'static str,
    key: &(dyn tokio_postgres::types::ToSql + Sync),
) -> Result<Vec<BusyTask>, DbError> {
    let rows = db.query(sql, &[key]).await?;
    Ok(rows
        .iter()
        .map(|r| BusyTask { run_id: r.get(0), task_id: r.get(1), map_index: r.get(2), state: r.get(3) })
        .filter(|t| t.state == "queued" || t.state == "running")
        .collect())
}

/// Deletes a run with its task instances, their tries, logs and XComs (the
/// foreign keys cascade) unless one of its task instances is queued or
/// running. Run it in a transaction: it locks the run and its unfinished task
/// instances first. Deleting a live run wakes the schedulers (a freed
/// `max_active_runs` slot) and may complete its backfill.
pub async fn delete(db: &impl GenericClient, id: i64) -> Result<Deletion, DbError> {
    let Some(run) = lock(db, id).await? else { return Ok(Deletion::NotFound) };
    let busy = lock_busy_tasks(
        db,
        concat!(
            "SELECT run_id, task_id, map_index, state FROM task_instances WHERE run_pk = $1 AND state IN ",
            unfinished_states!(),
            " ORDER BY task_id, map_index FOR UPDATE"
        ),
        &id,
    )
    .await?;
    if !busy.is_empty() {
        return Ok(Deletion::Busy(busy));
    }
    db.execute("DELETE FROM dag_runs WHERE id = $1", &[&id]).await?;
    if !run.state.is_finished() {
        Signal::run_queued(db, &run.dag_id).await?;
        if let Some(backfill_id) = run.backfill_id {
            super::backfills::complete_if_done(db, backfill_id).await?;
        }
    }
    Ok(Deletion::Deleted)
}

/// Whether the run is running, and its DAG version, read without a lock;
/// `None` once it has finished or does not exist.
pub async fn running_version(db: &impl GenericClient, id: i64) -> Result<Option<(bool, i64)>, DbError> {
    let statement = db
        .prepare_cached(
            "SELECT state = 'running', dag_version_id FROM dag_runs WHERE id = $1 AND state IN ('queued', 'running')",
        )
        .await?;
    Ok(db.query_opt(&statement, &[&id]).await?.map(|row| (row.get(0), row.get(1))))
}

/// The live runs: every running run and every queued run outside a
/// backfill, and of each backfill only the queued run it starts next (in
/// its logical-date order, newest first with `run_backwards`). No parameters.
const LIVE_IDS: &str = r#"
SELECT id FROM dag_runs
WHERE state IN ('queued', 'running') AND (backfill_id IS NULL OR state = 'running')
UNION ALL
(SELECT DISTINCT ON (r.backfill_id) r.id FROM dag_runs r JOIN backfills b ON b.id = r.backfill_id
 WHERE r.state = 'queued'
 ORDER BY r.backfill_id, CASE WHEN b.run_backwards THEN r.logical_date END DESC, r.logical_date, r.id)
ORDER BY id"#;

/// Primary keys of every queued or running run (served by a partial index);
/// of a backfill's queued runs only the one it would start next.
pub async fn live_ids(db: &impl GenericClient) -> Result<Vec<i64>, DbError> {
    let rows = db.query(LIVE_IDS, &[]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Locks a live run for scheduling; `None` when it is finished or another scheduler holds it.
pub async fn lock_live(db: &impl GenericClient, id: i64) -> Result<Option<DagRunRow>, DbError> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM dag_runs WHERE id = $1 AND state IN ('queued', 'running') FOR UPDATE SKIP LOCKED"
    );
    let statement = db.prepare_cached(&sql).await?;
    db.query_opt(&statement, &[&id]).await?.as_ref().map(run_row).transpose()
}

/// Number of running runs of a DAG, backfill runs left out (they have their own limit).
pub async fn count_running(db: &impl GenericClient, dag_id: &str) -> Result<i64, DbError> {
    Ok(db
        .query_one(
            "SELECT count(*) FROM dag_runs WHERE dag_id = $1 AND state = 'running' AND backfill_id IS NULL",
            &[&dag_id],
        )
        .await?
        .get(0))
}

/// Number of queued or running runs of a DAG, backfill runs left out.
pub async fn count_live(db: &impl GenericClient, dag_id: &str) -> Result<i64, DbError> {
    Ok(db
        .query_one(
            r#"
SELECT count(*) FROM dag_runs
WHERE dag_id = $1 AND state IN ('queued', 'running') AND backfill_id IS NULL"#,
            &[&dag_id],
        )
        .await?
        .get(0))
}

/// The latest logical date of a DAG's scheduled runs, if it has any.
pub async fn latest_scheduled_logical_date(
    db: &impl GenericClient,
    dag_id: &str,
) -> Result<Option<DateTime<Utc>>, DbError> {
    Ok(db
        .query_one("SELECT max(logical_date) FROM dag_runs WHERE dag_id = $1 AND run_type = 'scheduled'", &[&dag_id])
        .await?
        .get(0))
}

/// Holds off every other scheduler's run creation for the DAG until this transaction ends.
pub async fn lock_run_creation(db: &impl GenericClient, dag_id: &str) -> Result<(), DbError> {
    AdvisoryLock::RunCreation { dag_id }.lock_for_transaction(db).await
}

/// Holds off every other scheduler's run starts for the DAG until this
/// transaction ends, so `max_active_runs` holds across schedulers.
pub async fn lock_run_start(db: &impl GenericClient, dag_id: &str) -> Result<(), DbError> {
    AdvisoryLock::RunStart { dag_id }.lock_for_transaction(db).await
}

/// Moves a run `queued → running` ([`RunTransition::Start`]); false when it was not queued.
pub async fn start(db: &impl GenericClient, id: i64) -> Result<bool, DbError> {
    Ok(db
        .execute(
            "UPDATE dag_runs SET state = 'running', start_date = now() WHERE id = $1 AND state = ANY($2)",
            &[&id, &RunTransition::Start.from_strs()],
        )
        .await?
        == 1)
}

/// Moves a run `running → success|failed` ([`RunTransition::Finish`]), and (on commit) wakes the
/// schedulers so a run of the same DAG held back by `max_active_runs` starts;
/// completes its backfill when it was the backfill's last live run. False
/// when it was not running.
pub async fn finish(db: &impl GenericClient, id: i64, state: RunState) -> Result<bool, DbError> {
    let row = db
        .query_opt(
            r#"
UPDATE dag_runs SET state = $2, end_date = now() WHERE id = $1 AND state = ANY($4)
RETURNING pg_notify($3, dag_id), backfill_id"#,
            &[&id, &state.as_str(), &RUN_QUEUED_CHANNEL, &RunTransition::Finish.from_strs()],
        )
        .await?;
    let Some(row) = row else { return Ok(false) };
    if let Some(backfill_id) = row.get::<_, Option<i64>>(1) {
        super::backfills::complete_if_done(db, backfill_id).await?;
    }
    Ok(true)
}

/// `(id, dag_id, backfill_id)` of queued runs in the order they may start:
/// the DAGs' own runs oldest first, then each backfill's runs in its
/// logical-date order (newest first with `run_backwards`).
pub async fn queued(db: &impl GenericClient) -> Result<Vec<(i64, String, Option<i64>)>, DbError> {
    let rows = db
        .query(
            r#"
SELECT r.id, r.dag_id, r.backfill_id FROM dag_runs r LEFT JOIN backfills b ON b.id = r.backfill_id
WHERE r.state = 'queued'
ORDER BY r.backfill_id NULLS FIRST, CASE WHEN b.run_backwards THEN r.logical_date END DESC,
         CASE WHEN NOT b.run_backwards THEN r.logical_date END, r.id"#,
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
}

/// Whether the DAG is paused (paused DAGs start no runs).
pub async fn dag_is_paused(db: &impl GenericClient, dag_id: &str) -> Result<bool, DbError> {
    Ok(db.query_opt("SELECT is_paused FROM dags WHERE dag_id = $1", &[&dag_id]).await?.is_none_or(|r| r.get(0)))
}

/// Puts a run back to `queued` (after some of its tasks were cleared,
/// [`RunTransition::Requeue`]) and wakes the schedulers.
pub async fn requeue(db: &impl GenericClient, id: i64) -> Result<bool, DbError> {
    let row = db
        .query_opt(
            "UPDATE dag_runs SET state = 'queued', end_date = NULL WHERE id = $1 AND state = ANY($2) RETURNING dag_id",
            &[&id, &RunTransition::Requeue.from_strs()],
        )
        .await?;
    let Some(row) = row else { return Ok(false) };
    let dag_id: String = row.get(0);
    Signal::run_queued(db, &dag_id).await?;
    Ok(true)
}
