//! Queries on `dags` and `dag_versions`.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::{DbError, GenericClient};
use crate::dag::Dag;

/// A DAG as stored, for the API and the scheduler.
#[derive(Debug, Clone)]
pub struct DagRow {
    /// The DAG's id.
    pub dag_id: String,
    /// Paused DAGs get no new runs started.
    pub is_paused: bool,
    /// False once its file is gone (Airflow's `is_stale`).
    pub is_active: bool,
    /// The file it came from.
    pub fileloc: String,
    /// Schedule text, if any.
    pub schedule: Option<String>,
    /// Description, if any.
    pub description: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Owners.
    pub owners: Vec<String>,
    /// Most concurrently running runs.
    pub max_active_runs: i32,
    /// Most task instances queued or running at once, across its runs.
    pub max_active_tasks: i32,
    /// Id of the newest version.
    pub latest_version_id: i64,
    /// When the file was last parsed.
    pub last_parsed_at: DateTime<Utc>,
}

/// One stored version of a DAG definition.
#[derive(Debug, Clone)]
pub struct DagVersion {
    /// Primary key.
    pub id: i64,
    /// The DAG.
    pub dag_id: String,
    /// 1, 2, … per DAG.
    pub version_number: i32,
    /// The validated definition.
    pub definition: Dag,
    /// When this version was first seen.
    pub created_at: DateTime<Utc>,
}

const DAG_COLUMNS: &str = "dag_id, is_paused, is_active, fileloc, schedule, description, tags, owners, \
     max_active_runs, max_active_tasks, latest_version_id, last_parsed_at";

fn dag_row(row: &Row) -> DagRow {
    DagRow {
        dag_id: row.get("dag_id"),
        is_paused: row.get("is_paused"),
        is_active: row.get("is_active"),
        fileloc: row.get("fileloc"),
        schedule: row.get("schedule"),
        description: row.get("description"),
        tags: row.get("tags"),
        owners: row.get("owners"),
        max_active_runs: row.get("max_active_runs"),
        max_active_tasks: row.get("max_active_tasks"),
        latest_version_id: row.get("latest_version_id"),
        last_parsed_at: row.get("last_parsed_at"),
    }
}

fn version_row(row: &Row) -> Result<DagVersion, DbError> {
    let definition: serde_json::Value = row.get("definition");
    Ok(DagVersion {
        id: row.get("id"),
        dag_id: row.get("dag_id"),
        version_number: row.get("version_number"),
        definition: serde_json::from_value(definition).map_err(|e| DbError::Corrupt(format!("DAG definition: {e}")))?,
        created_at: row.get("created_at"),
    })
}

/// Stores a parsed DAG: inserts it or updates it, adding a new version when
/// its content hash changed. Returns true when a new version was created.
pub async fn upsert(db: &impl GenericClient, dag: &Dag, fileloc: &str, hash: &str) -> Result<bool, DbError> {
    let definition = serde_json::to_value(dag).expect("a DAG always serialises");
    let current: Option<(String, bool)> = db
        .query_opt("SELECT version_hash, is_active FROM dags WHERE dag_id = $1 FOR UPDATE", &[&dag.dag_id])
        .await?
        .map(|r| (r.get(0), r.get(1)));
    let schedule = dag.schedule.as_ref().map(|s| s.text.clone());
    let max_active_runs = i32::try_from(dag.max_active_runs).unwrap_or(i32::MAX);
    let max_active_tasks = i32::try_from(dag.max_active_tasks).unwrap_or(i32::MAX);
    if let Some((current_hash, is_active)) = &current {
        if current_hash == hash {
            if !is_active {
                db.execute("UPDATE dags SET is_active = true, fileloc = $2 WHERE dag_id = $1", &[&dag.dag_id, &fileloc])
                    .await?;
            }
            db.execute("UPDATE dags SET last_parsed_at = now() WHERE dag_id = $1", &[&dag.dag_id]).await?;
            return Ok(false);
        }
    }
    if current.is_none() {
        db.execute(
            "INSERT INTO dags (dag_id, fileloc, schedule, description, tags, owners, max_active_runs, definition, version_hash, \
                 max_active_tasks) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                &dag.dag_id,
                &fileloc,
                &schedule,
                &dag.description,
                &dag.tags,
                &dag.owners,
                &max_active_runs,
                &definition,
                &hash,
                &max_active_tasks,
            ],
        )
        .await?;
    }
    let version_id: i64 = db
        .query_one(
            "INSERT INTO dag_versions (dag_id, version_number, version_hash, definition) \
             SELECT $1, coalesce(max(version_number), 0) + 1, $2, $3 FROM dag_versions WHERE dag_id = $1 \
             RETURNING id",
            &[&dag.dag_id, &hash, &definition],
        )
        .await?
        .get(0);
    db.execute(
        "UPDATE dags SET fileloc = $2, schedule = $3, description = $4, tags = $5, owners = $6, max_active_runs = $7, \
         definition = $8, version_hash = $9, latest_version_id = $10, is_active = true, last_parsed_at = now(), \
         max_active_tasks = $11 \
         WHERE dag_id = $1",
        &[
            &dag.dag_id,
            &fileloc,
            &schedule,
            &dag.description,
            &dag.tags,
            &dag.owners,
            &max_active_runs,
            &definition,
            &hash,
            &version_id,
            &max_active_tasks,
        ],
    )
    .await?;
    Ok(true)
}

/// Marks inactive every active DAG whose file is not in `present_files`; returns their ids.
pub async fn deactivate_missing(db: &impl GenericClient, present_dag_ids: &[String]) -> Result<Vec<String>, DbError> {
    let rows = db
        .query(
            "UPDATE dags SET is_active = false WHERE is_active AND NOT (dag_id = ANY($1)) RETURNING dag_id",
            &[&present_dag_ids],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The files that currently define each active DAG.
pub async fn active_filelocs(db: &impl GenericClient) -> Result<Vec<(String, String)>, DbError> {
    let rows = db.query("SELECT dag_id, fileloc FROM dags WHERE is_active", &[]).await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// One DAG by id.
pub async fn get(db: &impl GenericClient, dag_id: &str) -> Result<Option<DagRow>, DbError> {
    let sql = format!("SELECT {DAG_COLUMNS} FROM dags WHERE dag_id = $1");
    Ok(db.query_opt(&sql, &[&dag_id]).await?.as_ref().map(dag_row))
}

/// A page of DAGs ordered by id, and the total count.
pub async fn list(db: &impl GenericClient, limit: i64, offset: i64, only_active: bool) -> Result<(Vec<DagRow>, i64), DbError> {
    let sql = format!(
        "SELECT {DAG_COLUMNS} FROM dags WHERE ($3 = false OR is_active) ORDER BY dag_id LIMIT $1 OFFSET $2"
    );
    let rows = db.query(&sql, &[&limit, &offset, &only_active]).await?;
    let total: i64 = db
        .query_one("SELECT count(*) FROM dags WHERE ($1 = false OR is_active)", &[&only_active])
        .await?
        .get(0);
    Ok((rows.iter().map(dag_row).collect(), total))
}

/// Sets `is_paused`; returns the updated DAG, or `None` when it does not exist.
pub async fn set_paused(db: &impl GenericClient, dag_id: &str, paused: bool) -> Result<Option<DagRow>, DbError> {
    let sql = format!("UPDATE dags SET is_paused = $2 WHERE dag_id = $1 RETURNING {DAG_COLUMNS}");
    Ok(db.query_opt(&sql, &[&dag_id, &paused]).await?.as_ref().map(dag_row))
}

/// Active, unpaused DAGs that have a schedule, with their latest version.
pub async fn scheduled(db: &impl GenericClient) -> Result<Vec<DagVersion>, DbError> {
    let rows = db
        .query(
            "SELECT v.id, v.dag_id, v.version_number, v.definition, v.created_at \
             FROM dags d JOIN dag_versions v ON v.id = d.latest_version_id \
             WHERE d.is_active AND NOT d.is_paused AND d.schedule IS NOT NULL",
            &[],
        )
        .await?;
    rows.iter().map(version_row).collect()
}

/// One version by id.
pub async fn version(db: &impl GenericClient, version_id: i64) -> Result<Option<DagVersion>, DbError> {
    let row = db
        .query_opt(
            "SELECT id, dag_id, version_number, definition, created_at FROM dag_versions WHERE id = $1",
            &[&version_id],
        )
        .await?;
    row.as_ref().map(version_row).transpose()
}
