//! Queries on `component_heartbeats`: which schedulers and workers are alive.

use chrono::{DateTime, Utc};

use super::{DbError, GenericClient};

/// One component's last sign of life.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    /// Unique name (worker name, or `scheduler@host:pid`).
    pub name: String,
    /// `scheduler` or `worker`.
    pub kind: String,
    /// Host it runs on.
    pub hostname: String,
    /// Its process id.
    pub pid: i32,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it last said it was alive.
    pub last_heartbeat_at: DateTime<Utc>,
    /// Tasks it was running then (workers).
    pub running_tasks: i32,
    /// Set when it stopped cleanly.
    pub stopped_at: Option<DateTime<Utc>>,
    /// Queues it consumes (workers).
    pub queues: Vec<String>,
    /// Operators it can run, as it advertised them at start (workers): a JSON
    /// list of `{name, kind, version, …}`.
    pub operators: serde_json::Value,
}

/// Records that `name` is alive (first call: started).
pub async fn beat(
    db: &impl GenericClient,
    name: &str,
    kind: &str,
    hostname: &str,
    running_tasks: i32,
    first: bool,
) -> Result<(), DbError> {
    let pid = i32::try_from(std::process::id()).unwrap_or(0);
    db.execute(
        r#"
INSERT INTO component_heartbeats (name, kind, hostname, pid, running_tasks) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, hostname = EXCLUDED.hostname, pid = EXCLUDED.pid,
    running_tasks = EXCLUDED.running_tasks, last_heartbeat_at = now(), stopped_at = NULL,
    started_at = CASE WHEN $6 THEN now() ELSE component_heartbeats.started_at END"#,
        &[&name, &kind, &hostname, &pid, &running_tasks, &first],
    )
    .await?;
    Ok(())
}

/// Records what worker `name` can run: its queues and its operators (see [`Heartbeat::operators`]).
pub async fn advertise(
    db: &impl GenericClient,
    name: &str,
    queues: &[String],
    operators: &serde_json::Value,
) -> Result<(), DbError> {
    db.execute(
        "UPDATE component_heartbeats SET queues = $2, operators = $3 WHERE name = $1",
        &[&name, &queues, &operators],
    )
    .await?;
    Ok(())
}

/// The `args_schema` (and version) that a live worker (heartbeat in the last
/// minute) of `queue` advertises for custom operator `operator`, if any does.
pub async fn args_schema(
    db: &impl GenericClient,
    queue: &str,
    operator: &str,
) -> Result<Option<(Option<String>, serde_json::Value)>, DbError> {
    let row = db
        .query_opt(
            r#"
SELECT o->>'version', o->'args_schema' FROM live_workers h, jsonb_array_elements(h.operators) o
WHERE $1 = ANY(h.queues) AND o->>'name' = $2 AND o ? 'args_schema'
ORDER BY h.last_heartbeat_at DESC LIMIT 1"#,
            &[&queue, &operator],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// Why a task of `queue` with custom `operator` stays scheduled, and what to do.
pub fn unserved_operator(operator: &str, queue: &str) -> String {
    format!(
        "no live worker of queue `{queue}` advertises operator `{operator}`; start workers of that queue with gust-op-{operator} on GUST__WORKER__PLUGIN_PATH"
    )
}

/// Records a clean stop.
pub async fn stopped(db: &impl GenericClient, name: &str) -> Result<(), DbError> {
    db.execute("UPDATE component_heartbeats SET stopped_at = now(), running_tasks = 0 WHERE name = $1", &[&name])
        .await?;
    Ok(())
}

/// Every known component of `kind`, most recent heartbeat first.
pub async fn list(db: &impl GenericClient, kind: &str) -> Result<Vec<Heartbeat>, DbError> {
    let rows = db
        .query(
            r#"
SELECT name, kind, hostname, pid, started_at, last_heartbeat_at, running_tasks, stopped_at, queues, operators
FROM component_heartbeats WHERE kind = $1 ORDER BY last_heartbeat_at DESC"#,
            &[&kind],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Heartbeat {
            name: r.get(0),
            kind: r.get(1),
            hostname: r.get(2),
            pid: r.get(3),
            started_at: r.get(4),
            last_heartbeat_at: r.get(5),
            running_tasks: r.get(6),
            stopped_at: r.get(7),
            queues: r.get(8),
            operators: r.get(9),
        })
        .collect())
}
