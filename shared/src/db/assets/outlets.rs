//! The worker's side of assets: a successful try records one event per
//! outlet asset, in the transaction that records the success.

use uuid::Uuid;

use super::{record_event, AssetEvent, NewAssetEvent};
use crate::{
    dag::AssetRef,
    db::{DbError, GenericClient},
};

/// The XCom key whose value (a JSON object), when the task wrote one, becomes its events' `extra`.
pub const ASSET_EXTRA_XCOM_KEY: &str = "asset_extra";

/// The task instance whose successful try produced the events.
#[derive(Debug, Clone, Copy)]
pub struct Producer<'a> {
    /// The task instance's primary key (its XComs are looked up by it).
    pub ti_id: Uuid,
    /// The DAG.
    pub dag_id: &'a str,
    /// The run.
    pub run_id: &'a str,
    /// The task.
    pub task_id: &'a str,
    /// The map index, -1 when not mapped.
    pub map_index: i32,
}

/// Records an event for each of `outlets` (registering any the scheduler has
/// not), in asset id order so concurrent producers lock queue rows in one order.
pub async fn record_outlet_events(
    db: &impl GenericClient,
    producer: &Producer<'_>,
    outlets: &[AssetRef],
) -> Result<Vec<AssetEvent>, DbError> {
    if outlets.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = outlets.iter().map(|a| a.name.as_str()).collect();
    let uris: Vec<&str> = outlets.iter().map(|a| a.uri.as_str()).collect();
    let groups: Vec<&str> = outlets.iter().map(|a| a.group.as_str()).collect();
    let rows = db
        .query(
            r#"
WITH given AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) AS g(name, uri, grp)
), created AS (
    INSERT INTO assets (name, uri, asset_group)
    SELECT g.name, g.uri, g.grp FROM given g
    WHERE NOT EXISTS (SELECT 1 FROM assets a WHERE a.uri = g.uri OR a.name = g.name)
    ON CONFLICT DO NOTHING
    RETURNING id
)
SELECT id FROM assets WHERE uri = ANY($2)
UNION SELECT id FROM created
ORDER BY id"#,
            &[&names, &uris, &groups],
        )
        .await?;
    let extra = db
        .query_opt(
            "SELECT value FROM xcom WHERE ti_id = $1 AND key = $2 AND jsonb_typeof(value) = 'object'",
            &[&producer.ti_id, &ASSET_EXTRA_XCOM_KEY],
        )
        .await?
        .map_or_else(|| serde_json::json!({}), |row| row.get(0));
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        let event = NewAssetEvent {
            asset_id: row.get(0),
            extra: &extra,
            source_dag_id: Some(producer.dag_id),
            source_task_id: Some(producer.task_id),
            source_run_id: Some(producer.run_id),
            source_map_index: producer.map_index,
            partition_key: None,
        };
        events.push(record_event(db, &event).await?);
    }
    Ok(events)
}
