//! The API's queries on assets (`/api/v2/assets…`): assets with the DAGs and
//! tasks that reference them, aliases, events with the runs they created, and
//! the queued events waiting to trigger a DAG (read and deleted by hand).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::{event_of, AssetEvent, EVENT_COLUMNS};
use crate::db::{
    filters::{Conditions, TextMatch, TimeRange},
    DbError, GenericClient,
};

/// An asset as stored, with its latest event.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetRow {
    /// Primary key.
    pub id: i64,
    /// Its name (unique).
    pub name: String,
    /// Its URI (unique).
    pub uri: String,
    /// Its group (`asset` unless the DAG file says otherwise).
    pub group: String,
    /// Free-form JSON object from the DAG file.
    pub extra: serde_json::Value,
    /// When it was first registered.
    pub created_at: DateTime<Utc>,
    /// When its registration last changed.
    pub updated_at: DateTime<Utc>,
    /// The id and time of its latest event, if it has one.
    pub last_event: Option<(i64, DateTime<Utc>)>,
}

/// A DAG whose schedule names an asset.
#[derive(Debug, Clone, PartialEq)]
pub struct DagReference {
    /// The DAG.
    pub dag_id: String,
    /// When the reference was registered.
    pub created_at: DateTime<Utc>,
    /// When it was last registered again.
    pub updated_at: DateTime<Utc>,
}

/// A task that produces or consumes an asset.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskReference {
    /// The task's DAG.
    pub dag_id: String,
    /// The task.
    pub task_id: String,
    /// When the reference was registered.
    pub created_at: DateTime<Utc>,
    /// When it was last registered again.
    pub updated_at: DateTime<Utc>,
}

/// An asset alias.
#[derive(Debug, Clone, PartialEq)]
pub struct AliasRow {
    /// Primary key.
    pub id: i64,
    /// Its name (unique).
    pub name: String,
    /// Its group.
    pub group: String,
}

/// An asset with everything that references it.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetDetails {
    /// The asset.
    pub asset: AssetRow,
    /// DAGs scheduled on it.
    pub scheduled_dags: Vec<DagReference>,
    /// Tasks with it as an outlet.
    pub producing_tasks: Vec<TaskReference>,
    /// Tasks with it as an inlet.
    pub consuming_tasks: Vec<TaskReference>,
    /// Aliases that resolved to it.
    pub aliases: Vec<AliasRow>,
}

/// Which assets [`list_assets`] returns; an unset field matches every asset.
#[derive(Debug, Clone, Default)]
pub struct AssetFilter {
    /// Matches on the name, all of which must hold.
    pub name_matches: Vec<TextMatch>,
    /// Matches on the URI, all of which must hold.
    pub uri_matches: Vec<TextMatch>,
    /// Only assets one of these DAGs schedules on, produces or consumes (`None`: no filter).
    pub dag_ids: Option<Vec<String>>,
    /// Only assets a DAG still in the DAG folder references.
    pub only_active: bool,
}

/// The fields assets can be ordered by (Airflow's names) and their columns.
pub const ASSET_ORDER_FIELDS: &[(&str, &str)] =
    &[("id", "id"), ("name", "name"), ("uri", "uri"), ("created_at", "created_at"), ("updated_at", "updated_at")];
/// The assets' order when the client names none.
pub const ASSET_DEFAULT_ORDER: &str = "id ASC";
/// The fields aliases can be ordered by.
pub const ALIAS_ORDER_FIELDS: &[(&str, &str)] = &[("id", "id"), ("name", "name")];
/// The aliases' order when the client names none.
pub const ALIAS_DEFAULT_ORDER: &str = "id ASC";
/// The fields events can be ordered by (Airflow's names) and their columns.
pub const EVENT_ORDER_FIELDS: &[(&str, &str)] = &[
    ("source_task_id", "source_task_id"),
    ("source_dag_id", "source_dag_id"),
    ("source_run_id", "source_run_id"),
    ("source_map_index", "source_map_index"),
    ("timestamp", "created_at"),
];
/// The events' order when the client names none: oldest first.
pub const EVENT_DEFAULT_ORDER: &str = "created_at ASC";
/// Appended to every listing's order so pages are stable: the primary key.
pub const ORDER_TIEBREAK: &str = "id ASC";

/// Assets with their latest event's id and time.
const ASSETS_FROM: &str = r#"assets
LEFT JOIN LATERAL (
    SELECT ev.id AS last_event_id, ev.created_at AS last_event_at FROM asset_events ev
    WHERE ev.asset_id = assets.id ORDER BY ev.created_at DESC, ev.id DESC LIMIT 1
) last_event ON true"#;
const ASSET_COLUMNS: &str = "id, name, uri, asset_group, extra, created_at, updated_at, last_event_id, last_event_at";

fn asset_row(row: &Row) -> AssetRow {
    let last_id: Option<i64> = row.get("last_event_id");
    let last_at: Option<DateTime<Utc>> = row.get("last_event_at");
    AssetRow {
        id: row.get("id"),
        name: row.get("name"),
        uri: row.get("uri"),
        group: row.get("asset_group"),
        extra: row.get("extra"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
        last_event: last_id.zip(last_at),
    }
}

fn alias_row(row: &Row) -> AliasRow {
    AliasRow { id: row.get("id"), name: row.get("name"), group: row.get("alias_group") }
}

/// A page of the assets `filter` keeps, ordered by `order_by` (built from
/// [`ASSET_ORDER_FIELDS`] only), with their references, and how many it keeps in all.
pub async fn list_assets(
    db: &impl GenericClient,
    filter: &AssetFilter,
    order_by: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<AssetDetails>, i64), DbError> {
    let mut c = Conditions::default();
    for text in &filter.name_matches {
        c.push_match("name", Some(text));
    }
    for text in &filter.uri_matches {
        c.push_match("uri", Some(text));
    }
    if let Some(dag_ids) = &filter.dag_ids {
        c.push(
            r#"(EXISTS (SELECT 1 FROM dag_schedule_assets s WHERE s.asset_id = assets.id AND s.dag_id = ANY($?))
   OR EXISTS (SELECT 1 FROM task_asset_references t WHERE t.asset_id = assets.id AND t.dag_id = ANY($?)))"#,
            dag_ids.clone(),
        );
    }
    c.push(
        r#"(NOT $? OR EXISTS (
    SELECT 1 FROM dag_schedule_assets s JOIN dags d USING (dag_id) WHERE s.asset_id = assets.id AND d.is_active
    UNION ALL
    SELECT 1 FROM task_asset_references t JOIN dags d USING (dag_id) WHERE t.asset_id = assets.id AND d.is_active))"#,
        filter.only_active,
    );
    let (rows, total) = c.page(db, ASSET_COLUMNS, ASSETS_FROM, order_by, limit, offset).await?;
    let assets = rows.iter().map(asset_row).collect();
    Ok((with_references(db, assets).await?, total))
}

/// One asset with its references.
pub async fn get_asset(db: &impl GenericClient, asset_id: i64) -> Result<Option<AssetDetails>, DbError> {
    let Some(asset) = find_asset(db, asset_id).await? else { return Ok(None) };
    Ok(with_references(db, vec![asset]).await?.pop())
}

/// One asset, without its references.
pub async fn find_asset(db: &impl GenericClient, asset_id: i64) -> Result<Option<AssetRow>, DbError> {
    let sql = format!("SELECT {ASSET_COLUMNS} FROM {ASSETS_FROM} WHERE id = $1");
    Ok(db.query_opt(&sql, &[&asset_id]).await?.as_ref().map(asset_row))
}

/// `assets` with the DAGs, tasks and aliases that reference each, in four queries.
async fn with_references(db: &impl GenericClient, assets: Vec<AssetRow>) -> Result<Vec<AssetDetails>, DbError> {
    let ids: Vec<i64> = assets.iter().map(|asset| asset.id).collect();
    let mut scheduled: HashMap<i64, Vec<DagReference>> = HashMap::new();
    let rows = db
        .query(
            "SELECT asset_id, dag_id, created_at, updated_at FROM dag_schedule_assets \
             WHERE asset_id = ANY($1) ORDER BY dag_id",
            &[&ids],
        )
        .await?;
    for row in &rows {
        scheduled.entry(row.get("asset_id")).or_default().push(DagReference {
            dag_id: row.get("dag_id"),
            created_at: row.get("created_at"),
            updated_at: row.get("updated_at"),
        });
    }
    let mut tasks: HashMap<(i64, String), Vec<TaskReference>> = HashMap::new();
    let rows = db
        .query(
            "SELECT asset_id, direction, dag_id, task_id, created_at, updated_at FROM task_asset_references \
             WHERE asset_id = ANY($1) ORDER BY dag_id, task_id",
            &[&ids],
        )
        .await?;
    for row in &rows {
        tasks.entry((row.get("asset_id"), row.get("direction"))).or_default().push(TaskReference {
            dag_id: row.get("dag_id"),
            task_id: row.get("task_id"),
            created_at: row.get("created_at"),
            updated_at: row.get("updated_at"),
        });
    }
    let mut aliases: HashMap<i64, Vec<AliasRow>> = HashMap::new();
    let rows = db
        .query(
            "SELECT aa.asset_id, al.id, al.name, al.alias_group FROM asset_alias_assets aa \
             JOIN asset_aliases al ON al.id = aa.alias_id WHERE aa.asset_id = ANY($1) ORDER BY al.id",
            &[&ids],
        )
        .await?;
    for row in &rows {
        aliases.entry(row.get("asset_id")).or_default().push(alias_row(row));
    }
    Ok(assets
        .into_iter()
        .map(|asset| AssetDetails {
            scheduled_dags: scheduled.remove(&asset.id).unwrap_or_default(),
            producing_tasks: tasks.remove(&(asset.id, "outlet".into())).unwrap_or_default(),
            consuming_tasks: tasks.remove(&(asset.id, "inlet".into())).unwrap_or_default(),
            aliases: aliases.remove(&asset.id).unwrap_or_default(),
            asset,
        })
        .collect())
}

/// A page of the aliases whose names match all of `name_matches`, ordered by
/// `order_by` (built from [`ALIAS_ORDER_FIELDS`] only), and how many match in all.
pub async fn list_aliases(
    db: &impl GenericClient,
    name_matches: &[TextMatch],
    order_by: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<AliasRow>, i64), DbError> {
    let mut c = Conditions::default();
    for text in name_matches {
        c.push_match("name", Some(text));
    }
    let (rows, total) = c.page(db, "id, name, alias_group", "asset_aliases", order_by, limit, offset).await?;
    Ok((rows.iter().map(alias_row).collect(), total))
}

/// One alias.
pub async fn get_alias(db: &impl GenericClient, alias_id: i64) -> Result<Option<AliasRow>, DbError> {
    let row = db.query_opt("SELECT id, name, alias_group FROM asset_aliases WHERE id = $1", &[&alias_id]).await?;
    Ok(row.as_ref().map(alias_row))
}

/// A run an event took part in creating (Airflow's `created_dagruns`).
#[derive(Debug, Clone, PartialEq)]
pub struct CreatedRun {
    /// The run's id.
    pub run_id: String,
    /// Its DAG.
    pub dag_id: String,
    /// Its logical date.
    pub logical_date: Option<DateTime<Utc>>,
    /// When it started, or when it was queued while it has not started.
    pub start_date: DateTime<Utc>,
    /// When it finished.
    pub end_date: Option<DateTime<Utc>>,
    /// Its state.
    pub state: String,
    /// Its data interval's start.
    pub data_interval_start: Option<DateTime<Utc>>,
    /// Its data interval's end.
    pub data_interval_end: Option<DateTime<Utc>>,
    /// Its partition.
    pub partition_key: Option<String>,
    /// Whether this event triggered it: a run's latest consumed event does, earlier ones were only included.
    pub triggering: bool,
}

/// An event with its asset's names and the runs it took part in creating.
#[derive(Debug, Clone, PartialEq)]
pub struct EventDetails {
    /// The event.
    pub event: AssetEvent,
    /// Its asset's URI.
    pub uri: String,
    /// Its asset's name.
    pub name: String,
    /// Its asset's group.
    pub group: String,
    /// The runs it took part in creating.
    pub created_dagruns: Vec<CreatedRun>,
}

/// Which events [`list_events`] returns; an unset field matches every event.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Of this asset.
    pub asset_id: Option<i64>,
    /// Produced by a task of this DAG.
    pub source_dag_id: Option<String>,
    /// Produced by this task.
    pub source_task_id: Option<String>,
    /// Produced in this run.
    pub source_run_id: Option<String>,
    /// Produced by this mapped instance.
    pub source_map_index: Option<i32>,
    /// Matches on the asset's name, all of which must hold.
    pub name_matches: Vec<TextMatch>,
    /// Bounds on when it was recorded.
    pub timestamp: TimeRange,
}

/// Events joined with their asset's names, as one relation whose columns do not clash.
const EVENTS_FROM: &str = r#"(
    SELECT ev.*, a.name, a.uri, a.asset_group FROM asset_events ev JOIN assets a ON a.id = ev.asset_id
) events"#;

/// A page of the events `filter` keeps, ordered by `order_by` (built from
/// [`EVENT_ORDER_FIELDS`] only), with the runs each created, and how many it keeps in all.
pub async fn list_events(
    db: &impl GenericClient,
    filter: &EventFilter,
    order_by: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<EventDetails>, i64), DbError> {
    let mut c = Conditions::default();
    c.push_opt("asset_id = $?", filter.asset_id);
    c.push_opt("source_dag_id = $?", filter.source_dag_id.clone());
    c.push_opt("source_task_id = $?", filter.source_task_id.clone());
    c.push_opt("source_run_id = $?", filter.source_run_id.clone());
    c.push_opt("source_map_index = $?", filter.source_map_index);
    for text in &filter.name_matches {
        c.push_match("name", Some(text));
    }
    c.push_range("created_at", &filter.timestamp);
    let columns = format!("{EVENT_COLUMNS}, name, uri, asset_group");
    let (rows, total) = c.page(db, &columns, EVENTS_FROM, order_by, limit, offset).await?;
    Ok((with_created_runs(db, &rows).await?, total))
}

/// The events that created the run with row id `run_pk` (Airflow's consumed events), oldest first.
pub async fn consumed_events(db: &impl GenericClient, run_pk: i64) -> Result<Vec<EventDetails>, DbError> {
    let sql = format!(
        "SELECT {EVENT_COLUMNS}, name, uri, asset_group FROM {EVENTS_FROM} \
         WHERE id IN (SELECT event_id FROM dag_run_asset_events WHERE run_pk = $1) ORDER BY created_at, id"
    );
    let rows = db.query(&sql, &[&run_pk]).await?;
    with_created_runs(db, &rows).await
}

/// Event rows (selected with [`EVENT_COLUMNS`] and the asset's names) with the runs each created.
async fn with_created_runs(db: &impl GenericClient, rows: &[Row]) -> Result<Vec<EventDetails>, DbError> {
    let ids: Vec<i64> = rows.iter().map(|row| row.get("id")).collect();
    let runs = db
        .query(
            r#"
SELECT l.event_id, r.run_id, r.dag_id, r.logical_date, COALESCE(r.start_date, r.queued_at) AS start_date,
    r.end_date, r.state, r.data_interval_start, r.data_interval_end, r.partition_key,
    l.event_id = (
        SELECT l2.event_id FROM dag_run_asset_events l2 JOIN asset_events e2 ON e2.id = l2.event_id
        WHERE l2.run_pk = l.run_pk ORDER BY e2.created_at DESC, e2.id DESC LIMIT 1
    ) AS triggering
FROM dag_run_asset_events l JOIN dag_runs r ON r.id = l.run_pk
WHERE l.event_id = ANY($1)
ORDER BY r.id"#,
            &[&ids],
        )
        .await?;
    let mut created: HashMap<i64, Vec<CreatedRun>> = HashMap::new();
    for row in &runs {
        created.entry(row.get("event_id")).or_default().push(CreatedRun {
            run_id: row.get("run_id"),
            dag_id: row.get("dag_id"),
            logical_date: row.get("logical_date"),
            start_date: row.get("start_date"),
            end_date: row.get("end_date"),
            state: row.get("state"),
            data_interval_start: row.get("data_interval_start"),
            data_interval_end: row.get("data_interval_end"),
            partition_key: row.get("partition_key"),
            triggering: row.get("triggering"),
        });
    }
    Ok(rows
        .iter()
        .map(|row| {
            let event = event_of(row);
            EventDetails {
                created_dagruns: created.remove(&event.id).unwrap_or_default(),
                uri: row.get("uri"),
                name: row.get("name"),
                group: row.get("asset_group"),
                event,
            }
        })
        .collect())
}

/// The DAGs with a task that produces the asset, at most `limit` of them, by id.
pub async fn producing_dags(db: &impl GenericClient, asset_id: i64, limit: i64) -> Result<Vec<String>, DbError> {
    let rows = db
        .query(
            "SELECT DISTINCT dag_id FROM task_asset_references WHERE asset_id = $1 AND direction = 'outlet' \
             ORDER BY dag_id LIMIT $2",
            &[&asset_id, &limit],
        )
        .await?;
    Ok(rows.iter().map(|row| row.get("dag_id")).collect())
}

/// A queued event: an asset's events waiting to trigger a DAG scheduled on it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedEventRow {
    /// The DAG they wait to trigger.
    pub dag_id: String,
    /// The asset.
    pub asset_id: i64,
    /// When the first of them came.
    pub created_at: DateTime<Utc>,
}

/// Which queued events to read or delete; an unset field matches every one.
#[derive(Debug, Clone, Default)]
pub struct QueuedEventFilter {
    /// Of this asset.
    pub asset_id: Option<i64>,
    /// For this DAG.
    pub dag_id: Option<String>,
    /// Queued strictly before this time.
    pub before: Option<DateTime<Utc>>,
}

impl QueuedEventFilter {
    fn conditions(&self) -> Conditions {
        let mut c = Conditions::default();
        c.push_opt("asset_id = $?", self.asset_id);
        c.push_opt("dag_id = $?", self.dag_id.clone());
        c.push_opt("created_at < $?", self.before);
        c
    }
}

/// The queued events `filter` keeps, by DAG then asset.
pub async fn queued_events(
    db: &impl GenericClient,
    filter: &QueuedEventFilter,
) -> Result<Vec<QueuedEventRow>, DbError> {
    let c = filter.conditions();
    let sql = format!(
        "SELECT dag_id, asset_id, created_at FROM asset_queued_events {} ORDER BY dag_id, asset_id",
        c.where_sql()
    );
    let rows = db.query(&sql, &c.params()).await?;
    Ok(rows
        .iter()
        .map(|row| QueuedEventRow {
            dag_id: row.get("dag_id"),
            asset_id: row.get("asset_id"),
            created_at: row.get("created_at"),
        })
        .collect())
}

/// Deletes the queued events `filter` keeps, so they trigger nothing; returns how many.
pub async fn delete_queued_events(db: &impl GenericClient, filter: &QueuedEventFilter) -> Result<u64, DbError> {
    let c = filter.conditions();
    let sql = format!("DELETE FROM asset_queued_events {}", c.where_sql());
    Ok(db.execute(&sql, &c.params()).await?)
}
