//! Queries on assets (Airflow 3's data-aware scheduling), grouped by caller:
//! recording events (workers, the API) here, the scheduler's registration of
//! the assets DAGs name and its asset-triggered runs in `scheduling`, and the
//! API's reads in `reads`.
//!
//! Invariant: an event is recorded and queued for every DAG scheduled on its
//! asset in the caller's transaction, so a worker's successful try and its
//! events commit together (ack after commit covers both), and a rolled-back
//! try leaves no event behind.

pub mod outlets;
pub mod reads;
pub mod registration;
pub mod scheduling;

use chrono::{DateTime, Utc};

use super::{DbError, GenericClient};

/// Channel a scheduler listens on for DAGs that have new queued asset events; payload = dag_id.
pub const ASSETS_QUEUED_CHANNEL: &str = "gust_assets_queued";

/// An event to record: which asset changed, who changed it, and its extra.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAssetEvent<'a> {
    /// The asset's id.
    pub asset_id: i64,
    /// Free-form JSON object describing the change.
    pub extra: &'a serde_json::Value,
    /// The producing task's DAG (`None` for an event from outside gust).
    pub source_dag_id: Option<&'a str>,
    /// The producing task.
    pub source_task_id: Option<&'a str>,
    /// The producing run.
    pub source_run_id: Option<&'a str>,
    /// The producing task instance's map index (-1 when not mapped or from outside).
    pub source_map_index: i32,
    /// The partition the event is for (gust has no partitioned timetables; kept as given).
    pub partition_key: Option<&'a str>,
}

/// One recorded event.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetEvent {
    /// The event's id.
    pub id: i64,
    /// The asset's id.
    pub asset_id: i64,
    /// Free-form JSON object describing the change.
    pub extra: serde_json::Value,
    /// The producing task's DAG.
    pub source_dag_id: Option<String>,
    /// The producing task.
    pub source_task_id: Option<String>,
    /// The producing run.
    pub source_run_id: Option<String>,
    /// The producing task instance's map index.
    pub source_map_index: i32,
    /// The partition the event is for.
    pub partition_key: Option<String>,
    /// When it was recorded.
    pub timestamp: DateTime<Utc>,
}

/// The columns [`event_of`] reads.
pub const EVENT_COLUMNS: &str = "id, asset_id, extra, source_dag_id, source_task_id, source_run_id, \
                                 source_map_index, partition_key, created_at";

/// Reads a row selected with [`EVENT_COLUMNS`].
pub fn event_of(row: &tokio_postgres::Row) -> AssetEvent {
    AssetEvent {
        id: row.get("id"),
        asset_id: row.get("asset_id"),
        extra: row.get("extra"),
        source_dag_id: row.get("source_dag_id"),
        source_task_id: row.get("source_task_id"),
        source_run_id: row.get("source_run_id"),
        source_map_index: row.get("source_map_index"),
        partition_key: row.get("partition_key"),
        timestamp: row.get("created_at"),
    }
}

/// Records an event, queues it for every active DAG scheduled on its asset and
/// wakes the schedulers (the NOTIFY is delivered when the caller commits).
pub async fn record_event(db: &impl GenericClient, event: &NewAssetEvent<'_>) -> Result<AssetEvent, DbError> {
    let sql = format!(
        "INSERT INTO asset_events (asset_id, extra, source_dag_id, source_task_id, source_run_id, \
         source_map_index, partition_key) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {EVENT_COLUMNS}"
    );
    let row = db
        .query_one(
            &sql,
            &[
                &event.asset_id,
                event.extra,
                &event.source_dag_id,
                &event.source_task_id,
                &event.source_run_id,
                &event.source_map_index,
                &event.partition_key,
            ],
        )
        .await?;
    let recorded = event_of(&row);
    db.execute(
        r#"
WITH consumers AS (
    SELECT s.dag_id FROM dag_schedule_assets s JOIN dags d USING (dag_id)
    WHERE s.asset_id = $1 AND d.is_active
), queued AS (
    INSERT INTO asset_queued_events (asset_id, dag_id, created_at)
    SELECT $1, dag_id, $2 FROM consumers ORDER BY dag_id
    -- DO UPDATE locks the row, so a scheduler consuming it waits for this event or this waits for the
    -- scheduler and queues afresh; the row keeps the oldest waiting event's time (see `scheduling`).
    ON CONFLICT (asset_id, dag_id) DO UPDATE SET created_at = least(asset_queued_events.created_at, EXCLUDED.created_at)
)
SELECT pg_notify($3, dag_id) FROM consumers"#,
        &[&recorded.asset_id, &recorded.timestamp, &ASSETS_QUEUED_CHANNEL],
    )
    .await?;
    Ok(recorded)
}
