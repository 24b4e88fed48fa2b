//! Queries on `xcom`: small JSON values a task hands to its downstream tasks.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{DbError, GenericClient};
use crate::template::Xcoms;
pub use crate::template::RETURN_VALUE_KEY;

/// One stored XCom entry.
#[derive(Debug, Clone, PartialEq)]
pub struct XcomEntry {
    /// The key, `return_value` for a task's result.
    pub key: String,
    /// The JSON value.
    pub value: serde_json::Value,
    /// The try that wrote it.
    pub try_number: i32,
    /// When it was written.
    pub timestamp: DateTime<Utc>,
}

/// Replaces every XCom of a task instance with `entries` (a new successful
/// try's values supersede the previous try's).
pub async fn replace(
    db: &impl GenericClient,
    ti_id: Uuid,
    try_number: i32,
    entries: &[(&str, &serde_json::Value)],
) -> Result<(), DbError> {
    db.execute("DELETE FROM xcom WHERE ti_id = $1", &[&ti_id]).await?;
    if entries.is_empty() {
        return Ok(());
    }
    let keys: Vec<&str> = entries.iter().map(|(k, _)| *k).collect();
    let values: Vec<&serde_json::Value> = entries.iter().map(|(_, v)| *v).collect();
    db.execute(
        "INSERT INTO xcom (ti_id, key, value, try_number) SELECT $1, k, v, $2 FROM unnest($3::text[], $4::jsonb[]) AS t(k, v)",
        &[&ti_id, &try_number, &keys, &values],
    )
    .await?;
    Ok(())
}

/// Deletes the XComs of task instances that are about to run again.
pub async fn delete_for(db: &impl GenericClient, ti_ids: &[Uuid]) -> Result<(), DbError> {
    db.execute("DELETE FROM xcom WHERE ti_id = ANY($1)", &[&ti_ids]).await?;
    Ok(())
}

/// Every XCom of one task instance, by key.
pub async fn list(db: &impl GenericClient, ti_id: Uuid) -> Result<Vec<XcomEntry>, DbError> {
    let rows =
        db.query("SELECT key, value, try_number, timestamp FROM xcom WHERE ti_id = $1 ORDER BY key", &[&ti_id]).await?;
    Ok(rows.iter().map(entry_of).collect())
}

/// One XCom of one task instance.
pub async fn get(db: &impl GenericClient, ti_id: Uuid, key: &str) -> Result<Option<XcomEntry>, DbError> {
    let row = db
        .query_opt("SELECT key, value, try_number, timestamp FROM xcom WHERE ti_id = $1 AND key = $2", &[&ti_id, &key])
        .await?;
    Ok(row.as_ref().map(entry_of))
}

/// The XComs of a run, as task id → key → value, for templates' `ti.xcom_pull`
/// and mapping; a mapped task's values form a list in map-index order, as in Airflow.
pub async fn for_run(db: &impl GenericClient, run_pk: i64) -> Result<Xcoms, DbError> {
    let rows = db
        .query(
            r#"
SELECT ti.task_id, x.key, x.value, ti.map_index FROM xcom x JOIN task_instances ti ON ti.id = x.ti_id
WHERE ti.run_pk = $1 ORDER BY ti.task_id, x.key, ti.map_index"#,
            &[&run_pk],
        )
        .await?;
    let mut out = Xcoms::new();
    for row in rows {
        let (task_id, key, value, map_index): (String, String, serde_json::Value, i32) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let keys = out.entry(task_id).or_default();
        if map_index < 0 {
            keys.insert(key, value);
        } else if let serde_json::Value::Array(values) =
            keys.entry(key).or_insert_with(|| serde_json::Value::Array(Vec::new()))
        {
            values.push(value);
        }
    }
    Ok(out)
}

/// The `return_value` XComs of the named task instances of one run (unmapped), by task id.
pub async fn return_values(
    db: &impl GenericClient,
    run_pk: i64,
    task_ids: &[&str],
) -> Result<Vec<(String, serde_json::Value)>, DbError> {
    let rows = db
        .query(
            r#"
SELECT ti.task_id, x.value FROM xcom x JOIN task_instances ti ON ti.id = x.ti_id
WHERE ti.run_pk = $1 AND ti.task_id = ANY($2) AND ti.map_index = -1 AND x.key = $3"#,
            &[&run_pk, &task_ids, &RETURN_VALUE_KEY],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Adds one XCom to a task instance, as its `try_number` try would have
/// written it (an entry made through the API); `None` when the key is taken.
pub async fn insert(
    db: &impl GenericClient,
    ti_id: Uuid,
    try_number: i32,
    key: &str,
    value: &serde_json::Value,
) -> Result<Option<XcomEntry>, DbError> {
    let row = db
        .query_opt(
            r#"
INSERT INTO xcom (ti_id, key, value, try_number) VALUES ($1, $2, $3, $4)
ON CONFLICT (ti_id, key) DO NOTHING
RETURNING key, value, try_number, timestamp"#,
            &[&ti_id, &key, value, &try_number],
        )
        .await?;
    Ok(row.as_ref().map(entry_of))
}

/// Replaces the value of one XCom (and stamps it now); `None` when there is no such key.
pub async fn update(
    db: &impl GenericClient,
    ti_id: Uuid,
    key: &str,
    value: &serde_json::Value,
) -> Result<Option<XcomEntry>, DbError> {
    let row = db
        .query_opt(
            r#"
UPDATE xcom SET value = $3, timestamp = now() WHERE ti_id = $1 AND key = $2
RETURNING key, value, try_number, timestamp"#,
            &[&ti_id, &key, value],
        )
        .await?;
    Ok(row.as_ref().map(entry_of))
}

/// Deletes one XCom; false when there was no such key.
pub async fn delete(db: &impl GenericClient, ti_id: Uuid, key: &str) -> Result<bool, DbError> {
    Ok(db.execute("DELETE FROM xcom WHERE ti_id = $1 AND key = $2", &[&ti_id, &key]).await? == 1)
}

/// The `return_value` XComs of the named tasks of one run as
/// `(task_id, map_index, value)`, by task id and map index (a mapped task has one per index).
pub async fn results(
    db: &impl GenericClient,
    run_pk: i64,
    task_ids: &[String],
) -> Result<Vec<(String, i32, serde_json::Value)>, DbError> {
    let rows = db
        .query(
            r#"
SELECT ti.task_id, ti.map_index, x.value FROM xcom x JOIN task_instances ti ON ti.id = x.ti_id
WHERE ti.run_pk = $1 AND ti.task_id = ANY($2) AND x.key = $3
ORDER BY ti.task_id, ti.map_index"#,
            &[&run_pk, &task_ids, &RETURN_VALUE_KEY],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
}

fn entry_of(row: &tokio_postgres::Row) -> XcomEntry {
    XcomEntry { key: row.get(0), value: row.get(1), try_number: row.get(2), timestamp: row.get(3) }
}
