//! The DAG grid's reads: a DAG's latest runs (the columns) and the states of
//! their task instances grouped by run, task and state (the cells), one
//! statement each, so 25 runs × 1,000 tasks is two round trips.

use chrono::{DateTime, Utc};

use crate::db::{DbError, GenericClient};

/// A run as a grid column shows it.
#[derive(Debug, Clone)]
pub struct GridRun {
    /// Primary key.
    pub id: i64,
    /// The run's id.
    pub run_id: String,
    /// `manual`, `scheduled` or `backfill`.
    pub run_type: String,
    /// Run state.
    pub state: String,
    /// When the run became due; the grid's order.
    pub run_after: DateTime<Utc>,
    /// Its logical date, if any.
    pub logical_date: Option<DateTime<Utc>>,
    /// When it started running.
    pub start_date: Option<DateTime<Utc>>,
    /// When it finished.
    pub end_date: Option<DateTime<Utc>>,
    /// The DAG version its tasks come from.
    pub dag_version_id: i64,
}

/// How many task instances of one task in one run are in one state.
#[derive(Debug, Clone)]
pub struct GridCell {
    /// The run's primary key.
    pub run_pk: i64,
    /// The task.
    pub task_id: String,
    /// The state.
    pub state: String,
    /// How many of the task's instances in that run are in it (1 unless mapped).
    pub count: i64,
    /// True when the instances are mapped ones (`map_index >= 0`).
    pub mapped: bool,
}

/// The `limit` latest runs of a DAG (by `run_after`), newest first.
pub async fn runs(db: &impl GenericClient, dag_id: &str, limit: i64) -> Result<Vec<GridRun>, DbError> {
    let rows = db
        .query(
            r#"
SELECT id, run_id, run_type, state, run_after, logical_date, start_date, end_date, dag_version_id
FROM dag_runs WHERE dag_id = $1 ORDER BY run_after DESC, id DESC LIMIT $2"#,
            &[&dag_id, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| GridRun {
            id: r.get("id"),
            run_id: r.get("run_id"),
            run_type: r.get("run_type"),
            state: r.get("state"),
            run_after: r.get("run_after"),
            logical_date: r.get("logical_date"),
            start_date: r.get("start_date"),
            end_date: r.get("end_date"),
            dag_version_id: r.get("dag_version_id"),
        })
        .collect())
}

/// The task-instance states of the runs `run_pks`, counted per run, task and state.
pub async fn cells(db: &impl GenericClient, run_pks: &[i64]) -> Result<Vec<GridCell>, DbError> {
    let rows = db
        .query(
            r#"
SELECT run_pk, task_id, state, count(*) AS n, bool_or(map_index >= 0) AS mapped
FROM task_instances WHERE run_pk = ANY($1)
GROUP BY run_pk, task_id, state"#,
            &[&run_pks],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| GridCell { run_pk: r.get(0), task_id: r.get(1), state: r.get(2), count: r.get(3), mapped: r.get(4) })
        .collect())
}
