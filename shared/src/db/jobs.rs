//! Airflow's jobs read from `component_heartbeats`: each scheduler and worker
//! process that ever heartbeated, with a state from its heartbeat's age.

use chrono::{DateTime, Utc};

use super::{DbError, GenericClient};

/// One scheduler or worker process as Airflow's `Job`.
#[derive(Debug, Clone)]
pub struct JobRow {
    /// A stable number derived from the component's unique name (48 bits of its MD5):
    /// gust keys heartbeats by name, and a restarted worker has a new name, so a new id.
    pub id: i64,
    /// `SchedulerJob` or `WorkerJob`.
    pub job_type: String,
    /// `running` (heartbeat within the threshold), `success` (stopped cleanly) or
    /// `failed` (stopped heartbeating without stopping: it died or lost the database).
    pub state: String,
    /// Host it runs on.
    pub hostname: String,
    /// When it started.
    pub start_date: DateTime<Utc>,
    /// When it stopped cleanly.
    pub end_date: Option<DateTime<Utc>>,
    /// Its last heartbeat.
    pub latest_heartbeat: DateTime<Utc>,
}

/// What a job listing keeps; `None` keeps all.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// Only jobs in this state.
    pub state: Option<String>,
    /// Only jobs of this type.
    pub job_type: Option<String>,
    /// Only jobs on this host.
    pub hostname: Option<String>,
    /// Only running (true) or not running (false) jobs.
    pub is_alive: Option<bool>,
    /// Start date bounds: at or after, after, at or before, before.
    pub start: [Option<DateTime<Utc>>; 4],
    /// End date bounds, as `start`.
    pub end: [Option<DateTime<Utc>>; 4],
}

/// The fields a job listing may be ordered by (Airflow's names) and their columns;
/// fields gust does not record order by `id`. Only these static strings reach an `ORDER BY`.
pub const ORDER_FIELDS: &[(&str, &str)] = &[
    ("id", "id"),
    ("dag_id", "id"),
    ("state", "state"),
    ("job_type", "job_type"),
    ("start_date", "started_at"),
    ("end_date", "stopped_at"),
    ("latest_heartbeat", "last_heartbeat_at"),
    ("executor_class", "id"),
    ("hostname", "hostname"),
    ("unixname", "id"),
];

const JOBS: &str = r#"
WITH jobs AS (
    SELECT ('x' || substr(md5(name), 1, 12))::bit(48)::bigint AS id,
        CASE kind WHEN 'scheduler' THEN 'SchedulerJob' WHEN 'worker' THEN 'WorkerJob' ELSE initcap(kind) || 'Job' END
            AS job_type,
        CASE WHEN stopped_at IS NOT NULL THEN 'success'
             WHEN last_heartbeat_at > now() - make_interval(secs => $1) THEN 'running'
             ELSE 'failed' END AS state,
        hostname, started_at, stopped_at, last_heartbeat_at
    FROM component_heartbeats)
SELECT id, job_type, state, hostname, started_at, stopped_at, last_heartbeat_at FROM jobs
WHERE ($2::text IS NULL OR state = $2) AND ($3::text IS NULL OR job_type = $3)
    AND ($4::text IS NULL OR hostname = $4) AND ($5::boolean IS NULL OR (state = 'running') = $5)
    AND ($6::timestamptz IS NULL OR started_at >= $6) AND ($7::timestamptz IS NULL OR started_at > $7)
    AND ($8::timestamptz IS NULL OR started_at <= $8) AND ($9::timestamptz IS NULL OR started_at < $9)
    AND ($10::timestamptz IS NULL OR stopped_at >= $10) AND ($11::timestamptz IS NULL OR stopped_at > $11)
    AND ($12::timestamptz IS NULL OR stopped_at <= $12) AND ($13::timestamptz IS NULL OR stopped_at < $13)"#;

/// One page of jobs matching `filter` in `order` (built from [`ORDER_FIELDS`]), and how many match;
/// a job whose last heartbeat is older than `alive_within_secs` is not running.
pub async fn list(
    db: &impl GenericClient,
    alive_within_secs: f64,
    filter: &JobFilter,
    order: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<JobRow>, i64), DbError> {
    let [s0, s1, s2, s3] = &filter.start;
    let [e0, e1, e2, e3] = &filter.end;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 15] = [
        &alive_within_secs,
        &filter.state,
        &filter.job_type,
        &filter.hostname,
        &filter.is_alive,
        s0,
        s1,
        s2,
        s3,
        e0,
        e1,
        e2,
        e3,
        &limit,
        &offset,
    ];
    let total: i64 = db.query_one(&format!("SELECT count(*) FROM ({JOBS}) matching"), &params[..13]).await?.get(0);
    let rows = db.query(&format!("{JOBS} ORDER BY {order} LIMIT $14 OFFSET $15"), &params).await?;
    let jobs = rows
        .iter()
        .map(|r| JobRow {
            id: r.get(0),
            job_type: r.get(1),
            state: r.get(2),
            hostname: r.get(3),
            start_date: r.get(4),
            end_date: r.get(5),
            latest_heartbeat: r.get(6),
        })
        .collect();
    Ok((jobs, total))
}
