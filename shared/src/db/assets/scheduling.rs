//! The scheduler's asset-triggered runs: which DAGs have queued events, and,
//! for one DAG inside the caller's transaction, its queued assets with their
//! unconsumed events, the link of a new run to the events that triggered it,
//! and the removal of the queue rows it consumed.
//!
//! Exactly once: the caller takes the DAG's run-creation lock, then locks its
//! queue rows (`FOR UPDATE`, in asset id order, the order producers lock them
//! in too). A producer's `record_event` upserts the same rows, so it either
//! committed before the lock (its event is visible here and gets linked) or
//! waits for this transaction and queues its event afresh. An event counts as
//! consumed by a DAG once it is linked to one of the DAG's runs, so no event
//! triggers a DAG twice, however many schedulers run.

use chrono::{DateTime, Utc};

use crate::db::{DbError, GenericClient};

/// An event waiting to trigger a DAG.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingEvent {
    /// The event's id.
    pub event_id: i64,
    /// Its asset's id.
    pub asset_id: i64,
    /// Its asset's URI (what conditions name).
    pub uri: String,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
}

/// Active, unpaused DAGs that have queued asset events (a paused DAG keeps its events queued).
pub async fn dags_with_queued_events(db: &impl GenericClient) -> Result<Vec<String>, DbError> {
    let rows = db
        .query(
            r#"
SELECT DISTINCT q.dag_id FROM asset_queued_events q JOIN dags d USING (dag_id)
WHERE d.is_active AND NOT d.is_paused ORDER BY q.dag_id"#,
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The latest version of `dag_id` when it is active and unpaused (a paused DAG keeps its events queued).
pub async fn schedulable_version(db: &impl GenericClient, dag_id: &str) -> Result<Option<i64>, DbError> {
    let row = db
        .query_opt("SELECT latest_version_id FROM dags WHERE dag_id = $1 AND is_active AND NOT is_paused", &[&dag_id])
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Locks the DAG's queue rows until the transaction ends and returns the
/// events they stand for that no run of the DAG has consumed yet, oldest first,
/// with the ids of every locked asset (some may have no such event left).
pub async fn lock_pending(db: &impl GenericClient, dag_id: &str) -> Result<(Vec<PendingEvent>, Vec<i64>), DbError> {
    let locked = db
        .query("SELECT asset_id FROM asset_queued_events WHERE dag_id = $1 ORDER BY asset_id FOR UPDATE", &[&dag_id])
        .await?;
    let locked: Vec<i64> = locked.iter().map(|r| r.get(0)).collect();
    if locked.is_empty() {
        return Ok((Vec::new(), locked));
    }
    let rows = db
        .query(
            r#"
SELECT e.id, e.asset_id, a.uri, e.created_at
FROM asset_queued_events q
JOIN assets a ON a.id = q.asset_id
JOIN asset_events e ON e.asset_id = q.asset_id AND e.created_at >= q.created_at
WHERE q.dag_id = $1 AND NOT EXISTS (
    SELECT 1 FROM dag_run_asset_events l JOIN dag_runs r ON r.id = l.run_pk
    WHERE l.event_id = e.id AND r.dag_id = $1)
ORDER BY e.created_at, e.id"#,
            &[&dag_id],
        )
        .await?;
    let events = rows
        .iter()
        .map(|r| PendingEvent { event_id: r.get(0), asset_id: r.get(1), uri: r.get(2), created_at: r.get(3) })
        .collect();
    Ok((events, locked))
}

/// Links run `run_pk` to the events that triggered it.
pub async fn link_events(db: &impl GenericClient, run_pk: i64, event_ids: &[i64]) -> Result<(), DbError> {
    db.execute(
        "INSERT INTO dag_run_asset_events (run_pk, event_id) SELECT $1, unnest($2::bigint[]) ON CONFLICT DO NOTHING",
        &[&run_pk, &event_ids],
    )
    .await?;
    Ok(())
}

/// Deletes the DAG's queue rows of `asset_ids` (consumed, or with nothing left to consume).
pub async fn dequeue(db: &impl GenericClient, dag_id: &str, asset_ids: &[i64]) -> Result<(), DbError> {
    db.execute("DELETE FROM asset_queued_events WHERE dag_id = $1 AND asset_id = ANY($2)", &[&dag_id, &asset_ids])
        .await?;
    Ok(())
}

/// The events that triggered run `run_pk` (Airflow's `consumed_asset_events`), with their asset's URI and name, oldest first.
pub async fn triggering_events(db: &impl GenericClient, run_pk: i64) -> Result<Vec<TriggeringEvent>, DbError> {
    let rows = db
        .query(
            r#"
SELECT e.id, a.uri, a.name, e.extra, e.source_dag_id, e.source_task_id, e.source_run_id, e.source_map_index,
       e.created_at
FROM dag_run_asset_events l JOIN asset_events e ON e.id = l.event_id JOIN assets a ON a.id = e.asset_id
WHERE l.run_pk = $1 ORDER BY e.created_at, e.id"#,
            &[&run_pk],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| TriggeringEvent {
            id: r.get(0),
            uri: r.get(1),
            name: r.get(2),
            extra: r.get(3),
            source_dag_id: r.get(4),
            source_task_id: r.get(5),
            source_run_id: r.get(6),
            source_map_index: r.get(7),
            timestamp: r.get(8),
        })
        .collect())
}

/// One event that triggered a run, as templates see it.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggeringEvent {
    /// The event's id.
    pub id: i64,
    /// Its asset's URI.
    pub uri: String,
    /// Its asset's name.
    pub name: String,
    /// The event's extra.
    pub extra: serde_json::Value,
    /// The producing DAG, if any.
    pub source_dag_id: Option<String>,
    /// The producing task, if any.
    pub source_task_id: Option<String>,
    /// The producing run, if any.
    pub source_run_id: Option<String>,
    /// The producing task instance's map index.
    pub source_map_index: i32,
    /// When it was recorded.
    pub timestamp: DateTime<Utc>,
}
