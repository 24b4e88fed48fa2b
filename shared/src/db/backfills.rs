//! Queries on `backfills` and on the runs that belong to one (`dag_runs.backfill_id`).
//!
//! A backfill's runs start under the backfill's own `max_active_runs`, in
//! logical-date order (newest first with `run_backwards`), and never while the
//! backfill is paused; the DAG's `max_active_runs` does not count them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;

use super::{DbError, GenericClient};
use crate::state::RunState;

/// What a backfill does with a logical date that already has a finished run (Airflow's `ReprocessBehavior`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReprocessBehavior {
    /// Leave every existing run alone.
    #[default]
    None,
    /// Run a failed run again.
    Failed,
    /// Run a failed or successful run again.
    Completed,
}

impl ReprocessBehavior {
    /// The database and API spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            ReprocessBehavior::None => "none",
            ReprocessBehavior::Failed => "failed",
            ReprocessBehavior::Completed => "completed",
        }
    }

    /// Parses the database and API spelling.
    pub fn parse(text: &str) -> Option<Self> {
        [ReprocessBehavior::None, ReprocessBehavior::Failed, ReprocessBehavior::Completed]
            .into_iter()
            .find(|b| b.as_str() == text)
    }

    /// Whether an existing run in `state` is run again; a queued or running one never is.
    pub fn reruns(self, state: RunState) -> bool {
        match self {
            ReprocessBehavior::None => false,
            ReprocessBehavior::Failed => state == RunState::Failed,
            ReprocessBehavior::Completed => state.is_finished(),
        }
    }
}

/// A backfill as stored.
#[derive(Debug, Clone)]
pub struct BackfillRow {
    /// Primary key.
    pub id: i64,
    /// The DAG.
    pub dag_id: String,
    /// Earliest logical date covered.
    pub from_date: DateTime<Utc>,
    /// Latest logical date covered.
    pub to_date: DateTime<Utc>,
    /// Whether runs start newest first.
    pub run_backwards: bool,
    /// The `conf` of every run the backfill created.
    pub dag_run_conf: serde_json::Value,
    /// A paused backfill starts no new runs.
    pub is_paused: bool,
    /// What happens to logical dates that already had a run.
    pub reprocess_behavior: ReprocessBehavior,
    /// Most runs of the backfill in `running` at once.
    pub max_active_runs: i32,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its last run finished or it was cancelled.
    pub completed_at: Option<DateTime<Utc>>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// What is needed to create a backfill.
#[derive(Debug, Clone)]
pub struct NewBackfill<'a> {
    /// The DAG.
    pub dag_id: &'a str,
    /// Earliest logical date covered.
    pub from_date: DateTime<Utc>,
    /// Latest logical date covered.
    pub to_date: DateTime<Utc>,
    /// Whether runs start newest first.
    pub run_backwards: bool,
    /// The `conf` of every run.
    pub dag_run_conf: &'a serde_json::Value,
    /// What happens to logical dates that already had a run.
    pub reprocess_behavior: ReprocessBehavior,
    /// Most runs of the backfill in `running` at once.
    pub max_active_runs: i32,
}

/// Why a backfill could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateBackfillError {
    /// The DAG already has a backfill that is neither completed nor cancelled.
    #[error("there is already a running backfill for DAG `{dag_id}`; wait for it to complete or cancel it")]
    AlreadyActive {
        /// The DAG.
        dag_id: String,
    },
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A run that already has one of the logical dates a backfill covers.
#[derive(Debug, Clone)]
pub struct ExistingRun {
    /// Primary key.
    pub id: i64,
    /// Its run id.
    pub run_id: String,
    /// Its logical date.
    pub logical_date: DateTime<Utc>,
    /// Its state.
    pub state: RunState,
    /// The DAG version it is pinned to.
    pub dag_version_id: i64,
}

const BACKFILL_COLUMNS: &str = r#"
id, dag_id, from_date, to_date, run_backwards, dag_run_conf, is_paused,
reprocess_behavior, max_active_runs, created_at, completed_at, updated_at"#;

fn backfill_row(row: &Row) -> Result<BackfillRow, DbError> {
    let reprocess: String = row.get("reprocess_behavior");
    Ok(BackfillRow {
        id: row.get("id"),
        dag_id: row.get("dag_id"),
        from_date: row.get("from_date"),
        to_date: row.get("to_date"),
        run_backwards: row.get("run_backwards"),
        dag_run_conf: row.get("dag_run_conf"),
        is_paused: row.get("is_paused"),
        reprocess_behavior: ReprocessBehavior::parse(&reprocess)
            .ok_or_else(|| DbError::Corrupt(format!("backfill reprocess_behavior `{reprocess}`")))?,
        max_active_runs: row.get("max_active_runs"),
        created_at: row.get("created_at"),
        completed_at: row.get("completed_at"),
        updated_at: row.get("updated_at"),
    })
}

/// Creates a backfill; fails when the DAG already has an active one.
pub async fn insert(db: &impl GenericClient, new: &NewBackfill<'_>) -> Result<BackfillRow, CreateBackfillError> {
    let sql = format!(
        r#"
INSERT INTO backfills (dag_id, from_date, to_date, run_backwards, dag_run_conf, reprocess_behavior, max_active_runs)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING {BACKFILL_COLUMNS}"#
    );
    let result = db
        .query_one(
            &sql,
            &[
                &new.dag_id,
                &new.from_date,
                &new.to_date,
                &new.run_backwards,
                &new.dag_run_conf,
                &new.reprocess_behavior.as_str(),
                &new.max_active_runs,
            ],
        )
        .await;
    match result {
        Ok(row) => Ok(backfill_row(&row)?),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
            Err(CreateBackfillError::AlreadyActive { dag_id: new.dag_id.to_string() })
        }
        Err(e) => Err(DbError::from(e).into()),
    }
}

/// One backfill by id.
pub async fn get(db: &impl GenericClient, id: i64) -> Result<Option<BackfillRow>, DbError> {
    let sql = format!("SELECT {BACKFILL_COLUMNS} FROM backfills WHERE id = $1");
    db.query_opt(&sql, &[&id]).await?.as_ref().map(backfill_row).transpose()
}

/// The DAG's backfill that is neither completed nor cancelled, if any.
pub async fn active_for_dag(db: &impl GenericClient, dag_id: &str) -> Result<Option<BackfillRow>, DbError> {
    let sql = format!("SELECT {BACKFILL_COLUMNS} FROM backfills WHERE dag_id = $1 AND completed_at IS NULL");
    db.query_opt(&sql, &[&dag_id]).await?.as_ref().map(backfill_row).transpose()
}

/// A page of one DAG's backfills ordered by id (newest first when `descending`), and the total count.
pub async fn list(
    db: &impl GenericClient,
    dag_id: &str,
    descending: bool,
    limit: i64,
    offset: i64,
) -> Result<(Vec<BackfillRow>, i64), DbError> {
    let direction = if descending { "DESC" } else { "ASC" };
    let sql = format!(
        "SELECT {BACKFILL_COLUMNS} FROM backfills WHERE dag_id = $1 ORDER BY id {direction} LIMIT $2 OFFSET $3"
    );
    let rows = db.query(&sql, &[&dag_id, &limit, &offset]).await?;
    let total: i64 = db.query_one("SELECT count(*) FROM backfills WHERE dag_id = $1", &[&dag_id]).await?.get(0);
    Ok((rows.iter().map(backfill_row).collect::<Result<_, _>>()?, total))
}

/// The DAG's runs at any of `logical_dates`, locked so no one else re-queues them meanwhile.
pub async fn runs_at(
    db: &impl GenericClient,
    dag_id: &str,
    logical_dates: &[DateTime<Utc>],
    lock: bool,
) -> Result<Vec<ExistingRun>, DbError> {
    let sql = format!(
        r#"
SELECT id, run_id, logical_date, state, dag_version_id FROM dag_runs
WHERE dag_id = $1 AND logical_date = ANY($2){}"#,
        if lock { " FOR UPDATE" } else { "" }
    );
    let rows = db.query(&sql, &[&dag_id, &logical_dates]).await?;
    rows.iter()
        .map(|row| {
            let state: String = row.get("state");
            Ok(ExistingRun {
                id: row.get("id"),
                run_id: row.get("run_id"),
                logical_date: row.get("logical_date"),
                state: RunState::parse(&state).ok_or_else(|| DbError::Corrupt(format!("run state `{state}`")))?,
                dag_version_id: row.get("dag_version_id"),
            })
        })
        .collect()
}

/// Makes new runs (created with `runs::insert`) part of the backfill.
pub async fn attach_runs(db: &impl GenericClient, backfill_id: i64, run_pks: &[i64]) -> Result<u64, DbError> {
    Ok(db.execute("UPDATE dag_runs SET backfill_id = $1 WHERE id = ANY($2)", &[&backfill_id, &run_pks]).await?)
}

/// Turns an existing finished run into a run of the backfill, as Airflow does
/// when it reprocesses one: `run_type` and `triggered_by` become `backfill`,
/// and its `conf` is replaced when the backfill was given one; its triggering
/// user becomes the backfill's creator. The caller
/// clears its task instances and re-queues it.
pub async fn adopt_run(
    db: &impl GenericClient,
    backfill_id: i64,
    run_pk: i64,
    conf: Option<&serde_json::Value>,
    triggering_user_name: Option<&str>,
) -> Result<bool, DbError> {
    Ok(db
        .execute(
            r#"
UPDATE dag_runs SET backfill_id = $1, run_type = 'backfill', triggered_by = 'backfill', conf = COALESCE($3, conf),
    triggering_user_name = $4
WHERE id = $2 AND state IN ('success', 'failed')"#,
            &[&backfill_id, &run_pk, &conf, &triggering_user_name],
        )
        .await?
        == 1)
}

/// `$1` the backfill, `$2` the queued run asking, `$3` its logical date.
const MAY_START_RUN: &str = r#"
SELECT (b.completed_at IS NOT NULL OR NOT b.is_paused)
    AND (SELECT count(*) FROM dag_runs r WHERE r.backfill_id = b.id AND r.state = 'running')
        < b.max_active_runs
    AND NOT EXISTS (SELECT 1 FROM dag_runs r WHERE r.backfill_id = b.id AND r.state = 'queued'
        AND r.id <> $2 AND CASE WHEN b.run_backwards THEN r.logical_date > $3
                                ELSE r.logical_date < $3 END)
FROM backfills b WHERE b.id = $1"#;

/// Whether the queued run at `logical_date` of the backfill may start now:
/// the backfill is not paused (a cancelled one no longer holds its runs), it
/// has fewer running runs than its `max_active_runs`, and no queued run of it
/// comes earlier in its order. Call under the DAG's run-start lock.
pub async fn may_start_run(
    db: &impl GenericClient,
    backfill_id: i64,
    run_pk: i64,
    logical_date: Option<DateTime<Utc>>,
) -> Result<bool, DbError> {
    let row = db.query_opt(MAY_START_RUN, &[&backfill_id, &run_pk, &logical_date]).await?;
    Ok(row.is_none_or(|r| r.get(0)))
}

/// Sets `completed_at` once none of the backfill's runs is queued or running;
/// true when this call completed it. Takes the backfill's row lock first, so
/// of two runs finishing at once the later one sees the other finished.
pub async fn complete_if_done(db: &impl GenericClient, backfill_id: i64) -> Result<bool, DbError> {
    let active = db
        .query_opt("SELECT 1 FROM backfills WHERE id = $1 AND completed_at IS NULL FOR UPDATE", &[&backfill_id])
        .await?;
    if active.is_none() {
        return Ok(false);
    }
    let completed = db
        .execute(
            r#"
UPDATE backfills SET completed_at = now(), updated_at = now()
WHERE id = $1 AND completed_at IS NULL AND NOT EXISTS
    (SELECT 1 FROM dag_runs WHERE backfill_id = $1 AND state IN ('queued', 'running'))"#,
            &[&backfill_id],
        )
        .await?;
    Ok(completed == 1)
}

/// Pauses or unpauses an active backfill; `None` when it is missing or already completed.
pub async fn set_paused(db: &impl GenericClient, id: i64, paused: bool) -> Result<Option<BackfillRow>, DbError> {
    let sql = format!(
        r#"
UPDATE backfills SET updated_at = CASE WHEN is_paused = $2 THEN updated_at ELSE now() END, is_paused = $2
WHERE id = $1 AND completed_at IS NULL RETURNING {BACKFILL_COLUMNS}"#
    );
    db.query_opt(&sql, &[&id, &paused]).await?.as_ref().map(backfill_row).transpose()
}

/// Cancels an active backfill as Airflow does: its queued runs become
/// `failed`, its running ones finish on their own, and it is paused and
/// completed now. Returns the backfill and how many runs were failed; `None`
/// when it is missing or already completed (roll the transaction back then).
pub async fn cancel(db: &impl GenericClient, id: i64) -> Result<Option<(BackfillRow, u64)>, DbError> {
    // Runs before the backfill row: the order the scheduler's run finishing takes its locks in.
    let failed = db
        .execute(
            "UPDATE dag_runs SET state = 'failed', end_date = now() WHERE backfill_id = $1 AND state = ANY($2)",
            &[&id, &crate::state::RunTransition::CancelBackfill.from_strs()],
        )
        .await?;
    let sql = format!(
        r#"
UPDATE backfills SET is_paused = true, completed_at = now(), updated_at = now()
WHERE id = $1 AND completed_at IS NULL RETURNING {BACKFILL_COLUMNS}"#
    );
    let row = db.query_opt(&sql, &[&id]).await?;
    Ok(row.as_ref().map(backfill_row).transpose()?.map(|backfill| (backfill, failed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reprocess_behaviors_rerun_only_finished_runs_they_name() {
        use RunState::*;
        let reruns = |b: ReprocessBehavior| [Queued, Running, Success, Failed].map(|s| b.reruns(s));
        assert_eq!(reruns(ReprocessBehavior::None), [false, false, false, false]);
        assert_eq!(reruns(ReprocessBehavior::Failed), [false, false, false, true]);
        assert_eq!(reruns(ReprocessBehavior::Completed), [false, false, true, true]);
    }

    #[test]
    fn reprocess_behaviors_use_airflows_spelling() {
        for b in [ReprocessBehavior::None, ReprocessBehavior::Failed, ReprocessBehavior::Completed] {
            assert_eq!(ReprocessBehavior::parse(b.as_str()), Some(b));
            assert_eq!(serde_json::to_value(b).unwrap(), b.as_str());
        }
        assert_eq!(ReprocessBehavior::parse("all"), None);
    }
}
