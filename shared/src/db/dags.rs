//! Queries on `dags` and `dag_versions`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::{
    filters::{Conditions, TextMatch},
    runs::{lock_busy_tasks, Deletion},
    DbError, GenericClient,
};
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

const DAG_COLUMNS: &str = r#"
dag_id, is_paused, is_active, fileloc, schedule, description, tags, owners,
max_active_runs, max_active_tasks, latest_version_id, last_parsed_at"#;

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

/// Stores a parsed DAG: inserts it or updates it, adding a new version (with
/// `source`, the file's text) when its content hash changed. An unchanged
/// file fills in the source of a version stored before sources were kept.
/// A DAG inserted for the first time is paused when its `is_paused_upon_creation`
/// says so, else when `paused_at_creation` (the scheduler's setting) does; an
/// update never changes `is_paused`. Returns true when a new version was created.
pub async fn upsert(
    db: &impl GenericClient,
    dag: &Dag,
    fileloc: &str,
    hash: &str,
    source: &str,
    paused_at_creation: bool,
) -> Result<bool, DbError> {
    let definition = serde_json::to_value(dag).expect("a DAG always serialises");
    let current: Option<(String, bool)> = db
        .query_opt("SELECT version_hash, is_active FROM dags WHERE dag_id = $1 FOR UPDATE", &[&dag.dag_id])
        .await?
        .map(|r| (r.get(0), r.get(1)));
    let schedule = dag.timetable_summary();
    let max_active_runs = i32::try_from(dag.max_active_runs).unwrap_or(i32::MAX);
    let max_active_tasks = i32::try_from(dag.max_active_tasks).unwrap_or(i32::MAX);
    if let Some((current_hash, is_active)) = &current {
        if current_hash == hash {
            if !is_active {
                db.execute(
                    "UPDATE dags SET is_active = true, fileloc = $2 WHERE dag_id = $1",
                    &[&dag.dag_id, &fileloc],
                )
                .await?;
            }
            db.execute("UPDATE dags SET last_parsed_at = now() WHERE dag_id = $1", &[&dag.dag_id]).await?;
            db.execute(
                r#"
UPDATE dag_versions SET source = $2
WHERE id = (SELECT latest_version_id FROM dags WHERE dag_id = $1) AND source IS NULL"#,
                &[&dag.dag_id, &source],
            )
            .await?;
            return Ok(false);
        }
    }
    if current.is_none() {
        let is_paused = dag.is_paused_upon_creation.unwrap_or(paused_at_creation);
        db.execute(
            r#"
INSERT INTO dags (dag_id, fileloc, schedule, description, tags, owners, max_active_runs, definition, version_hash,
    max_active_tasks, is_paused)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"#,
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
                &is_paused,
            ],
        )
        .await?;
    }
    let version_id: i64 = db
        .query_one(
            r#"
INSERT INTO dag_versions (dag_id, version_number, version_hash, definition, source)
SELECT $1, coalesce(max(version_number), 0) + 1, $2, $3, $4 FROM dag_versions WHERE dag_id = $1
RETURNING id"#,
            &[&dag.dag_id, &hash, &definition, &source],
        )
        .await?
        .get(0);
    db.execute(
        r#"
UPDATE dags SET fileloc = $2, schedule = $3, description = $4, tags = $5, owners = $6, max_active_runs = $7,
    definition = $8, version_hash = $9, latest_version_id = $10, is_active = true, last_parsed_at = now(),
    max_active_tasks = $11
WHERE dag_id = $1"#,
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
    super::assets::registration::register(db, dag).await?;
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

/// Which DAGs [`list_filtered`] returns; an unset field or an empty list matches every DAG.
#[derive(Debug, Clone, Default)]
pub struct DagFilter {
    /// Only DAGs whose file is still there (Airflow's `exclude_stale`).
    pub only_active: bool,
    /// Only paused (`true`) or unpaused (`false`) DAGs.
    pub paused: Option<bool>,
    /// DAGs with any of these tags, or with all of them when `all_tags` is set.
    pub tags: Vec<String>,
    /// `tags` must all be present rather than any.
    pub all_tags: bool,
    /// DAGs with any of these owners.
    pub owners: Vec<String>,
    /// Text matches on the DAG id (gust's display name too); each must hold.
    pub dag_id_matches: Vec<TextMatch>,
    /// Only the DAGs this user (username) marked as favorite (`true`) or did not (`false`).
    pub favorite_of: Option<(String, bool)>,
}

impl DagFilter {
    /// The `WHERE` conditions over `dags d` that keep the DAGs this filter matches.
    fn conditions(&self) -> Conditions {
        let mut c = Conditions::default();
        if self.only_active {
            c.push("is_active = $?", true);
        }
        c.push_opt("is_paused = $?", self.paused);
        if self.all_tags {
            c.push_any("tags @> $?::text[]", &self.tags);
        } else {
            c.push_any("tags && $?::text[]", &self.tags);
        }
        c.push_any("owners && $?::text[]", &self.owners);
        for text in &self.dag_id_matches {
            c.push_match("d.dag_id", Some(text));
        }
        match &self.favorite_of {
            Some((user, true)) => c.push(
                "EXISTS (SELECT 1 FROM dag_favorites f WHERE f.dag_id = d.dag_id AND f.username = $?)",
                user.clone(),
            ),
            Some((user, false)) => c.push(
                "NOT EXISTS (SELECT 1 FROM dag_favorites f WHERE f.dag_id = d.dag_id AND f.username = $?)",
                user.clone(),
            ),
            None => {}
        }
        c
    }
}

/// The fields a DAG listing may be ordered by (Airflow's names) and their SQL
/// over `dags` and its latest run `lr`; only these static strings ever reach an `ORDER BY`.
pub const ORDER_FIELDS: &[(&str, &str)] = &[
    ("dag_id", "dag_id"),
    // gust shows the DAG id as the display name.
    ("dag_display_name", "dag_id"),
    ("last_run_state", "lr.last_run_state"),
    ("last_run_start_date", "lr.last_run_start_date"),
    // Airflow's `state` and `start_date` of a DAG listing are those of its latest run.
    ("state", "lr.last_run_state"),
    ("start_date", "lr.last_run_start_date"),
];

/// The order of a listing that names none, and the tiebreak of every one.
pub const DEFAULT_ORDER: &str = "dag_id ASC";

/// Each DAG's latest run (by `run_after`), joined only when the order needs it.
const LATEST_RUN_JOIN: &str = r#"
LEFT JOIN LATERAL (
    SELECT r.state AS last_run_state, r.start_date AS last_run_start_date
    FROM dag_runs r WHERE r.dag_id = d.dag_id ORDER BY r.run_after DESC, r.id DESC LIMIT 1
) lr ON true"#;

/// A page of the DAGs `filter` keeps, ordered by `order_by`, and how many it
/// keeps in all. `order_by` must be built from [`ORDER_FIELDS`] only.
pub async fn list_filtered(
    db: &impl GenericClient,
    filter: &DagFilter,
    order_by: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<DagRow>, i64), DbError> {
    let c = filter.conditions();
    let where_sql = c.where_sql();
    let total: i64 = db.query_one(&format!("SELECT count(*) FROM dags d {where_sql}"), &c.params()).await?.get(0);
    let join = if order_by.contains("lr.") { LATEST_RUN_JOIN } else { "" };
    let n = c.len();
    let sql = format!(
        "SELECT {DAG_COLUMNS} FROM dags d {join} {where_sql} ORDER BY {order_by} LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    );
    let mut params = c.params();
    params.push(&limit);
    params.push(&offset);
    let rows = db.query(&sql, &params).await?;
    Ok((rows.iter().map(dag_row).collect(), total))
}

/// Deletes a DAG's metadata: the DAG, its versions, runs, backfills, task
/// instances and their tries, logs and XComs (the foreign keys cascade),
/// unless one of its task instances is queued or running. Run it in a
/// transaction: it locks the DAG, its live runs and its unfinished task
/// instances first, so no scheduler or worker moves them meanwhile. The DAG
/// file is untouched: the schedulers register the DAG again on their next rescan.
pub async fn delete(db: &impl GenericClient, dag_id: &str) -> Result<Deletion, DbError> {
    if db.query_opt("SELECT 1 FROM dags WHERE dag_id = $1 FOR UPDATE", &[&dag_id]).await?.is_none() {
        return Ok(Deletion::NotFound);
    }
    db.query("SELECT 1 FROM dag_runs WHERE dag_id = $1 AND state IN ('queued', 'running') FOR UPDATE", &[&dag_id])
        .await?;
    let busy = lock_busy_tasks(
        db,
        concat!(
            "SELECT run_id, task_id, map_index, state FROM task_instances WHERE dag_id = $1 AND state IN ",
            unfinished_states!(),
            " ORDER BY run_id, task_id, map_index FOR UPDATE"
        ),
        &dag_id,
    )
    .await?;
    if !busy.is_empty() {
        return Ok(Deletion::Busy(busy));
    }
    db.execute("DELETE FROM dags WHERE dag_id = $1", &[&dag_id]).await?;
    Ok(Deletion::Deleted)
}

/// The id of every stored DAG, active or not.
pub async fn ids(db: &impl GenericClient) -> Result<Vec<String>, DbError> {
    Ok(db.query("SELECT dag_id FROM dags", &[]).await?.iter().map(|r| r.get(0)).collect())
}

/// Sets `is_paused`; returns the updated DAG, or `None` when it does not exist.
pub async fn set_paused(db: &impl GenericClient, dag_id: &str, paused: bool) -> Result<Option<DagRow>, DbError> {
    let sql = format!("UPDATE dags SET is_paused = $2 WHERE dag_id = $1 RETURNING {DAG_COLUMNS}");
    Ok(db.query_opt(&sql, &[&dag_id, &paused]).await?.as_ref().map(dag_row))
}

/// Sets `is_paused` on every DAG `filter` keeps; returns how many there are.
pub async fn set_paused_filtered(db: &impl GenericClient, filter: &DagFilter, paused: bool) -> Result<u64, DbError> {
    let c = filter.conditions();
    let sql = format!("UPDATE dags d SET is_paused = ${} {}", c.len() + 1, c.where_sql());
    let mut params = c.params();
    params.push(&paused);
    Ok(db.execute(&sql, &params).await?)
}

/// What the next run of a scheduled DAG is computed from: its current definition
/// and the logical date of its latest scheduled run.
#[derive(Debug, Clone)]
pub struct ScheduleState {
    /// The DAG's current definition.
    pub definition: Dag,
    /// The logical date of its latest scheduled run, if it has one.
    pub last_logical_date: Option<DateTime<Utc>>,
}

/// The [`ScheduleState`] of each DAG in `dag_ids` that has a schedule.
pub async fn schedule_states(
    db: &impl GenericClient,
    dag_ids: &[String],
) -> Result<HashMap<String, ScheduleState>, DbError> {
    let rows = db
        .query(
            r#"
SELECT d.dag_id, d.definition,
    (SELECT max(r.logical_date) FROM dag_runs r WHERE r.dag_id = d.dag_id AND r.run_type = 'scheduled') AS last
FROM dags d WHERE d.dag_id = ANY($1) AND d.schedule IS NOT NULL"#,
            &[&dag_ids],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let definition: serde_json::Value = r.get(1);
            let definition =
                serde_json::from_value(definition).map_err(|e| DbError::Corrupt(format!("DAG definition: {e}")))?;
            Ok((r.get(0), ScheduleState { definition, last_logical_date: r.get(2) }))
        })
        .collect()
}

/// Whether a stored DAG came from the file `fileloc`.
pub async fn file_is_known(db: &impl GenericClient, fileloc: &str) -> Result<bool, DbError> {
    Ok(db.query_opt("SELECT 1 FROM dags WHERE fileloc = $1 LIMIT 1", &[&fileloc]).await?.is_some())
}

/// The current definition of a DAG, if it exists.
pub async fn definition(db: &impl GenericClient, dag_id: &str) -> Result<Option<Dag>, DbError> {
    let Some(row) = db.query_opt("SELECT definition FROM dags WHERE dag_id = $1", &[&dag_id]).await? else {
        return Ok(None);
    };
    let definition: serde_json::Value = row.get(0);
    serde_json::from_value(definition).map(Some).map_err(|e| DbError::Corrupt(format!("DAG definition: {e}")))
}

/// The fields a tag listing may be ordered by (Airflow's names) and their SQL.
pub const TAG_ORDER_FIELDS: &[(&str, &str)] = &[("name", "name")];

/// A page of the distinct tags of active DAGs that `name_matches` keep, ordered
/// by `order_by` (built from [`TAG_ORDER_FIELDS`] only), and how many there are.
pub async fn tag_page(
    db: &impl GenericClient,
    name_matches: &[TextMatch],
    order_by: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<String>, i64), DbError> {
    let mut c = Conditions::default();
    for text in name_matches {
        c.push_match("name", Some(text));
    }
    let from = "(SELECT DISTINCT unnest(tags) AS name FROM dags WHERE is_active) t";
    let (rows, total) = c.page(db, "name", from, order_by, limit, offset).await?;
    Ok((rows.iter().map(|r| r.get(0)).collect(), total))
}

/// The fields a version listing may be ordered by (Airflow's names) and their
/// SQL; gust has one bundle, so ordering by its name or version keeps the order.
pub const VERSION_ORDER_FIELDS: &[(&str, &str)] = &[
    ("id", "id"),
    ("version_number", "version_number"),
    ("bundle_name", "dag_id"),
    ("bundle_version", "dag_id"),
    ("created_at", "created_at"),
];

/// A page of a DAG's versions (only number `version_number` when given),
/// ordered by `order_by` (built from [`VERSION_ORDER_FIELDS`] only), and how many there are.
pub async fn version_page(
    db: &impl GenericClient,
    dag_id: &str,
    version_number: Option<i32>,
    order_by: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<DagVersion>, i64), DbError> {
    let mut c = Conditions::default();
    c.push("dag_id = $?", dag_id.to_string());
    c.push_opt("version_number = $?", version_number);
    let select = "id, dag_id, version_number, definition, created_at";
    let (rows, total) = c.page(db, select, "dag_versions", order_by, limit, offset).await?;
    Ok((rows.iter().map(version_row).collect::<Result<_, _>>()?, total))
}

/// Version `version_number` of a DAG, or its latest when `None`, with the file text
/// it was parsed from (`None` for a version stored before gust kept sources).
pub async fn version_with_source(
    db: &impl GenericClient,
    dag_id: &str,
    version_number: Option<i32>,
) -> Result<Option<(DagVersion, Option<String>)>, DbError> {
    let row = db
        .query_opt(
            r#"
SELECT id, dag_id, version_number, definition, created_at, source FROM dag_versions
WHERE dag_id = $1 AND ($2::int IS NULL OR version_number = $2)
ORDER BY version_number DESC LIMIT 1"#,
            &[&dag_id, &version_number],
        )
        .await?;
    row.map(|r| Ok((version_row(&r)?, r.get("source")))).transpose()
}

/// Active, unpaused DAGs that have a schedule, with their latest version.
pub async fn scheduled(db: &impl GenericClient) -> Result<Vec<DagVersion>, DbError> {
    let rows = db
        .query(
            r#"
SELECT v.id, v.dag_id, v.version_number, v.definition, v.created_at
FROM dags d JOIN dag_versions v ON v.id = d.latest_version_id
WHERE d.is_active AND NOT d.is_paused AND d.schedule IS NOT NULL"#,
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

/// One version of a DAG, as a version list shows it.
#[derive(Debug, Clone)]
pub struct VersionSummary {
    /// Primary key.
    pub id: i64,
    /// 1, 2, … per DAG.
    pub version_number: i32,
    /// When this version was first seen.
    pub created_at: DateTime<Utc>,
    /// Whether its source text is stored (not for versions stored before gust kept sources).
    pub has_source: bool,
}

/// Every version of a DAG, newest first.
pub async fn versions(db: &impl GenericClient, dag_id: &str) -> Result<Vec<VersionSummary>, DbError> {
    let rows = db
        .query(
            r#"
SELECT id, version_number, created_at, source IS NOT NULL AS has_source
FROM dag_versions WHERE dag_id = $1 ORDER BY version_number DESC"#,
            &[&dag_id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| VersionSummary {
            id: r.get("id"),
            version_number: r.get("version_number"),
            created_at: r.get("created_at"),
            has_source: r.get("has_source"),
        })
        .collect())
}

/// The file text a version was parsed from: `None` when the version does not
/// exist, `Some(None)` when it was stored before gust kept sources.
pub async fn source(db: &impl GenericClient, version_id: i64) -> Result<Option<Option<String>>, DbError> {
    let row = db.query_opt("SELECT source FROM dag_versions WHERE id = $1", &[&version_id]).await?;
    Ok(row.map(|r| r.get(0)))
}
