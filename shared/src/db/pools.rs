//! Queries on `pools`: named sets of slots that bound how many task instances
//! are queued or running at once (Airflow's pools). Dispatch enforces them in
//! [`super::task_instances::dispatch::take_for_dispatch`].

use tokio_postgres::{error::SqlState, Row};

use super::{DbError, GenericClient};
use crate::dag::DEFAULT_POOL;

/// A pool with the slots its task instances use right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolRow {
    /// Unique name.
    pub name: String,
    /// Slots in total.
    pub slots: i32,
    /// Free text.
    pub description: Option<String>,
    /// Whether deferred tasks occupy slots (Airflow's field; gust has no deferred tasks).
    pub include_deferred: bool,
    /// Slots of running task instances.
    pub running_slots: i64,
    /// Slots of queued task instances.
    pub queued_slots: i64,
    /// Slots of scheduled task instances waiting for this pool.
    pub scheduled_slots: i64,
    /// Slots of deferred task instances (always 0 in gust).
    pub deferred_slots: i64,
}

impl PoolRow {
    /// Slots in use: queued and running (and deferred when the pool counts them).
    pub fn occupied_slots(&self) -> i64 {
        self.running_slots + self.queued_slots + if self.include_deferred { self.deferred_slots } else { 0 }
    }

    /// Slots free for more task instances (negative when the pool was shrunk below its use).
    pub fn open_slots(&self) -> i64 {
        i64::from(self.slots) - self.occupied_slots()
    }
}

/// What a new pool is made of, or what an update changes (`None` keeps the current value).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolFields {
    /// Slots in total.
    pub slots: Option<i32>,
    /// Free text; `Some(None)` clears it.
    pub description: Option<Option<String>>,
    /// Whether deferred tasks occupy slots.
    pub include_deferred: Option<bool>,
}

/// Why a pool could not be created or deleted.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// A pool of that name exists.
    #[error("pool `{0}` already exists; change it with PATCH /api/v2/pools/{0}")]
    Duplicate(String),
    /// `default_pool` is where tasks without a pool go; it cannot go away.
    #[error("`default_pool` cannot be deleted: every task without a `pool` uses it; change its slots instead")]
    DefaultPool,
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Scheduled task instances that can never be dispatched as things stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolProblem {
    /// The pool the task instances name.
    pub pool: String,
    /// Its slots, or `None` when no such pool exists.
    pub slots: Option<i32>,
    /// The most slots one of them needs.
    pub max_pool_slots: i32,
    /// How many task instances wait.
    pub waiting: i64,
}

/// Each pool with the slots its scheduled, queued and running task instances
/// take; callers add a `WHERE` on `p` and `GROUP BY p.name`.
const POOL_STATS: &str = r#"
SELECT p.name, p.slots, p.description, p.include_deferred,
    coalesce(sum(ti.pool_slots) FILTER (WHERE ti.state = 'running'), 0)::bigint AS running_slots,
    coalesce(sum(ti.pool_slots) FILTER (WHERE ti.state = 'queued'), 0)::bigint AS queued_slots,
    coalesce(sum(ti.pool_slots) FILTER (WHERE ti.state = 'scheduled'), 0)::bigint AS scheduled_slots
FROM pools p LEFT JOIN task_instances ti ON ti.pool = p.name AND ti.state IN ('scheduled', 'queued', 'running')"#;

fn pool_row(row: &Row) -> PoolRow {
    PoolRow {
        name: row.get("name"),
        slots: row.get("slots"),
        description: row.get("description"),
        include_deferred: row.get("include_deferred"),
        running_slots: row.get("running_slots"),
        queued_slots: row.get("queued_slots"),
        scheduled_slots: row.get("scheduled_slots"),
        deferred_slots: 0,
    }
}

/// Every pool with its slots in use, by name (`gust_pool_slots`).
pub async fn all_stats(db: &impl GenericClient) -> Result<Vec<PoolRow>, DbError> {
    let sql = format!("{POOL_STATS} GROUP BY p.name ORDER BY p.name");
    Ok(db.query(&sql, &[]).await?.iter().map(pool_row).collect())
}

/// One page of pools in `order` (built from [`ORDER_FIELDS`]), and how many there are.
pub async fn list(
    db: &impl GenericClient,
    limit: i64,
    offset: i64,
    order: &str,
) -> Result<(Vec<PoolRow>, i64), DbError> {
    let total: i64 = db.query_one("SELECT count(*) FROM pools", &[]).await?.get(0);
    let sql = format!(
        r#"
SELECT * FROM ({POOL_STATS} WHERE p.name IN (SELECT name FROM pools ORDER BY {order} LIMIT $1 OFFSET $2)
    GROUP BY p.name) page
ORDER BY {order}"#
    );
    let rows = db.query(&sql, &[&limit, &offset]).await?;
    Ok((rows.iter().map(pool_row).collect(), total))
}

/// The fields a pool listing may be ordered by (Airflow's names) and their
/// columns; only these static strings ever reach an `ORDER BY`.
pub const ORDER_FIELDS: &[(&str, &str)] = &[("id", "name"), ("pool", "name"), ("name", "name"), ("slots", "slots")];

/// One pool by name.
pub async fn get(db: &impl GenericClient, name: &str) -> Result<Option<PoolRow>, DbError> {
    let sql = format!("{POOL_STATS} WHERE p.name = $1 GROUP BY p.name");
    Ok(db.query_opt(&sql, &[&name]).await?.as_ref().map(pool_row))
}

/// Which of `names` are pools.
pub async fn existing(db: &impl GenericClient, names: &[String]) -> Result<Vec<String>, DbError> {
    let rows = db.query("SELECT name FROM pools WHERE name = ANY($1)", &[&names]).await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// Creates a pool (0 slots and no description unless given) and wakes the schedulers.
pub async fn create(db: &impl GenericClient, name: &str, fields: &PoolFields) -> Result<PoolRow, PoolError> {
    let inserted = db
        .execute(
            "INSERT INTO pools (name, slots, description, include_deferred) VALUES ($1, $2, $3, $4)",
            &[
                &name,
                &fields.slots.unwrap_or(0),
                &fields.description.clone().flatten(),
                &fields.include_deferred.unwrap_or(false),
            ],
        )
        .await;
    match inserted {
        Ok(_) => {}
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => return Err(PoolError::Duplicate(name.into())),
        Err(e) => return Err(DbError::from(e).into()),
    }
    notify_changed(db, name).await?;
    get(db, name).await?.ok_or_else(|| DbError::Corrupt(format!("pool `{name}` vanished after its creation")).into())
}

/// Changes the given fields of a pool and wakes the schedulers; `None` when it does not exist.
pub async fn update(db: &impl GenericClient, name: &str, fields: &PoolFields) -> Result<Option<PoolRow>, DbError> {
    let updated = db
        .execute(
            r#"
UPDATE pools SET slots = coalesce($2, slots),
    description = CASE WHEN $3 THEN $4 ELSE description END,
    include_deferred = coalesce($5, include_deferred)
WHERE name = $1"#,
            &[
                &name,
                &fields.slots,
                &fields.description.is_some(),
                &fields.description.clone().flatten(),
                &fields.include_deferred,
            ],
        )
        .await?;
    if updated == 0 {
        return Ok(None);
    }
    notify_changed(db, name).await?;
    get(db, name).await
}

/// Deletes a pool; false when it does not exist. `default_pool` cannot be deleted.
pub async fn delete(db: &impl GenericClient, name: &str) -> Result<bool, PoolError> {
    if name == DEFAULT_POOL {
        return Err(PoolError::DefaultPool);
    }
    Ok(db.execute("DELETE FROM pools WHERE name = $1", &[&name]).await.map_err(DbError::from)? == 1)
}

async fn notify_changed(db: &impl GenericClient, name: &str) -> Result<(), DbError> {
    super::signals::Signal::PoolsChanged { name: name.to_string() }.send(db).await?;
    Ok(())
}

/// Pools that scheduled task instances wait for in vain: the pool does not
/// exist, or one task needs more slots than the pool has in total.
pub async fn problems(db: &impl GenericClient) -> Result<Vec<PoolProblem>, DbError> {
    let rows = db
        .query(
            r#"
SELECT w.pool, p.slots, w.max_pool_slots, w.waiting
FROM (SELECT pool, max(pool_slots) AS max_pool_slots, count(*) AS waiting
      FROM task_instances WHERE state = 'scheduled' GROUP BY pool) w
LEFT JOIN pools p ON p.name = w.pool
WHERE p.name IS NULL OR w.max_pool_slots > p.slots ORDER BY w.pool"#,
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| PoolProblem { pool: r.get(0), slots: r.get(1), max_pool_slots: r.get(2), waiting: r.get(3) })
        .collect())
}
