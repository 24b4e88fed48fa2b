//! Queries on `event_log`, the audit log (Airflow's event log): who changed
//! what through the API or the UI, and every login. The webapi writes it
//! ([`insert_many`]) and reads it (`GET /api/v2/eventLogs`); `gust db clean`
//! deletes old records (`db::retention`).

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::Row;

use super::{
    filters::{Conditions, TextMatch},
    DbError, GenericClient,
};

/// One record to write.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewEvent {
    /// What happened, with Airflow's names (`trigger_dag_run`, `clear`, `post_pool`, `login`, …).
    pub event: String,
    /// Who did it (the username; the name tried, for a failed login).
    pub owner: Option<String>,
    /// The DAG it concerned.
    pub dag_id: Option<String>,
    /// The run it concerned.
    pub run_id: Option<String>,
    /// The task it concerned.
    pub task_id: Option<String>,
    /// The mapped instance it concerned.
    pub map_index: Option<i32>,
    /// The try it concerned.
    pub try_number: Option<i32>,
    /// The logical date of the run it concerned.
    pub logical_date: Option<DateTime<Utc>>,
    /// The request's relevant fields, secrets masked.
    pub extra: Option<Value>,
}

/// One stored record.
#[derive(Debug, Clone, PartialEq)]
pub struct EventLogRow {
    /// Primary key (Airflow's `event_log_id`).
    pub id: i64,
    /// When it was recorded.
    pub when: DateTime<Utc>,
    /// The rest of the record.
    pub event: NewEvent,
}

/// Writes `events` in one statement; their time is the transaction's.
pub async fn insert_many(db: &impl GenericClient, events: &[NewEvent]) -> Result<u64, DbError> {
    let column = |field: fn(&NewEvent) -> Option<String>| events.iter().map(field).collect::<Vec<_>>();
    let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    let owners = column(|e| e.owner.clone());
    let dag_ids = column(|e| e.dag_id.clone());
    let run_ids = column(|e| e.run_id.clone());
    let task_ids = column(|e| e.task_id.clone());
    let map_indexes: Vec<Option<i32>> = events.iter().map(|e| e.map_index).collect();
    let try_numbers: Vec<Option<i32>> = events.iter().map(|e| e.try_number).collect();
    let logical_dates: Vec<Option<DateTime<Utc>>> = events.iter().map(|e| e.logical_date).collect();
    let extras: Vec<Option<Value>> = events.iter().map(|e| e.extra.clone()).collect();
    Ok(db
        .execute(
            r#"
INSERT INTO event_log (event, owner, dag_id, run_id, task_id, map_index, try_number, logical_date, extra)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::int[],
    $8::timestamptz[], $9::jsonb[])"#,
            &[&names, &owners, &dag_ids, &run_ids, &task_ids, &map_indexes, &try_numbers, &logical_dates, &extras],
        )
        .await?)
}

const COLUMNS: &str = "id, dttm, event, owner, dag_id, run_id, task_id, map_index, try_number, logical_date, extra";

fn event_row(row: &Row) -> EventLogRow {
    EventLogRow {
        id: row.get("id"),
        when: row.get("dttm"),
        event: NewEvent {
            event: row.get("event"),
            owner: row.get("owner"),
            dag_id: row.get("dag_id"),
            run_id: row.get("run_id"),
            task_id: row.get("task_id"),
            map_index: row.get("map_index"),
            try_number: row.get("try_number"),
            logical_date: row.get("logical_date"),
            extra: row.get("extra"),
        },
    }
}

/// One record by its id.
pub async fn get(db: &impl GenericClient, id: i64) -> Result<Option<EventLogRow>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM event_log WHERE id = $1");
    Ok(db.query_opt(&sql, &[&id]).await?.as_ref().map(event_row))
}

/// Which records [`list_filtered`] returns; an unset field or an empty list matches every record.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// The DAG.
    pub dag_id: Option<String>,
    /// The task.
    pub task_id: Option<String>,
    /// The run.
    pub run_id: Option<String>,
    /// The mapped instance.
    pub map_index: Option<i32>,
    /// The try.
    pub try_number: Option<i32>,
    /// Who.
    pub owner: Option<String>,
    /// This event.
    pub event: Option<String>,
    /// None of these events.
    pub excluded_events: Vec<String>,
    /// Any of these events.
    pub included_events: Vec<String>,
    /// Recorded strictly before this.
    pub before: Option<DateTime<Utc>>,
    /// Recorded strictly after this.
    pub after: Option<DateTime<Utc>>,
    /// Text matches on the DAG id; each must hold.
    pub dag_id_matches: Vec<TextMatch>,
    /// Text matches on the task id; each must hold.
    pub task_id_matches: Vec<TextMatch>,
    /// Text matches on the run id; each must hold.
    pub run_id_matches: Vec<TextMatch>,
    /// Text matches on the owner; each must hold.
    pub owner_matches: Vec<TextMatch>,
    /// Text matches on the event; each must hold.
    pub event_matches: Vec<TextMatch>,
}

/// The fields a listing may be ordered by (Airflow's names, with its aliases
/// `event_log_id` and `when`) and their SQL; only these reach an `ORDER BY`.
pub const ORDER_FIELDS: &[(&str, &str)] = &[
    ("id", "id"),
    ("event_log_id", "id"),
    ("dttm", "dttm"),
    ("when", "dttm"),
    ("dag_id", "dag_id"),
    ("task_id", "task_id"),
    ("run_id", "run_id"),
    ("event", "event"),
    ("logical_date", "logical_date"),
    ("owner", "owner"),
    ("extra", "extra::text"),
];

/// The order of a listing that names none: oldest first, as Airflow.
pub const DEFAULT_ORDER: &str = "id ASC";

/// Appended to every listing's order so pages are stable: the primary key.
pub const ORDER_TIEBREAK: &str = "id ASC";

/// A page of the records `filter` keeps, ordered by `order_by`, and how many
/// it keeps in all. `order_by` must be built from [`ORDER_FIELDS`] only.
pub async fn list_filtered(
    db: &impl GenericClient,
    filter: &EventFilter,
    order_by: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<EventLogRow>, i64), DbError> {
    let mut c = Conditions::default();
    c.push_opt("dag_id = $?", filter.dag_id.clone());
    c.push_opt("task_id = $?", filter.task_id.clone());
    c.push_opt("run_id = $?", filter.run_id.clone());
    c.push_opt("map_index = $?", filter.map_index);
    c.push_opt("try_number = $?", filter.try_number);
    c.push_opt("owner = $?", filter.owner.clone());
    c.push_opt("event = $?", filter.event.clone());
    c.push_any("event = ANY($?)", &filter.included_events);
    c.push_any("NOT (event = ANY($?))", &filter.excluded_events);
    c.push_opt("dttm < $?", filter.before);
    c.push_opt("dttm > $?", filter.after);
    let matches = [
        ("dag_id", &filter.dag_id_matches),
        ("task_id", &filter.task_id_matches),
        ("run_id", &filter.run_id_matches),
        ("owner", &filter.owner_matches),
        ("event", &filter.event_matches),
    ];
    for (column, texts) in matches {
        for text in texts {
            c.push_match(column, Some(text));
        }
    }
    let (rows, total) = c.page(db, COLUMNS, "event_log", order_by, limit, offset).await?;
    Ok((rows.iter().map(event_row).collect(), total))
}
