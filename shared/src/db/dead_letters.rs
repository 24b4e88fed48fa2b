//! Queries on `dead_letters`: messages that reached the dead queue, and why.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{DbError, GenericClient};

/// A dead-lettered message as recorded.
#[derive(Debug, Clone, Default)]
pub struct DeadLetter {
    /// Primary key.
    pub id: i64,
    /// Queue it was dead-lettered from.
    pub queue: String,
    /// Its routing key.
    pub routing_key: String,
    /// Short reason: `malformed`, `unknown_schema_version`, `unknown_task_instance`, `delivery_limit`, …
    pub reason: String,
    /// What exactly was wrong, for people.
    pub detail: String,
    /// The task instance it named, if it parsed.
    pub ti_id: Option<Uuid>,
    /// Its DAG, if it parsed.
    pub dag_id: Option<String>,
    /// Its run, if it parsed.
    pub run_id: Option<String>,
    /// Its task, if it parsed.
    pub task_id: Option<String>,
    /// Its try, if it parsed.
    pub try_number: Option<i32>,
    /// Deliveries the broker counted.
    pub deliveries: Option<i64>,
    /// The body (lossy UTF-8, truncated).
    pub body: String,
    /// When it was taken off the dead queue.
    pub received_at: Option<DateTime<Utc>>,
}

/// Records one dead letter.
pub async fn insert(db: &impl GenericClient, letter: &DeadLetter) -> Result<i64, DbError> {
    Ok(db
        .query_one(
            r#"
INSERT INTO dead_letters (queue, routing_key, reason, detail, ti_id, dag_id, run_id, task_id, try_number,
    deliveries, body)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id"#,
            &[
                &letter.queue,
                &letter.routing_key,
                &letter.reason,
                &letter.detail,
                &letter.ti_id,
                &letter.dag_id,
                &letter.run_id,
                &letter.task_id,
                &letter.try_number,
                &letter.deliveries,
                &super::storable_text(&letter.body).as_ref(),
            ],
        )
        .await?
        .get(0))
}

/// A page of dead letters, newest first, and the total count.
pub async fn list(db: &impl GenericClient, limit: i64, offset: i64) -> Result<(Vec<DeadLetter>, i64), DbError> {
    let rows = db
        .query(
            r#"
SELECT id, queue, routing_key, reason, detail, ti_id, dag_id, run_id, task_id, try_number, deliveries, body,
    received_at
FROM dead_letters ORDER BY id DESC LIMIT $1 OFFSET $2"#,
            &[&limit, &offset],
        )
        .await?;
    let total: i64 = db.query_one("SELECT count(*) FROM dead_letters", &[]).await?.get(0);
    let letters = rows
        .iter()
        .map(|r| DeadLetter {
            id: r.get(0),
            queue: r.get(1),
            routing_key: r.get(2),
            reason: r.get(3),
            detail: r.get(4),
            ti_id: r.get(5),
            dag_id: r.get(6),
            run_id: r.get(7),
            task_id: r.get(8),
            try_number: r.get(9),
            deliveries: r.get(10),
            body: r.get(11),
            received_at: r.get(12),
        })
        .collect();
    Ok((letters, total))
}
