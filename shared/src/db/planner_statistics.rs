//! The planner's statistics of `task_instances`, kept in step with its size.
//!
//! Why (issue 19, measured with `EXPLAIN (ANALYZE, BUFFERS)`): the engine's
//! hot statements are prepared once per connection and PostgreSQL keeps a
//! prepared statement's generic plan until the statistics of a table it
//! reads change. Planned while `task_instances` held one 200-task chain, the
//! cheapest plans scan the table whole (a hash join over a sequential scan
//! beats 10 index probes on 20 pages), and they stay in use while a fan-out
//! grows the table fifty-fold: on a 10,000-task run a claim batch took 1.3 ms
//! instead of 0.13 ms, a readiness update 2.7 ms instead of 0.04 ms, a
//! downstream lookup 6.8 ms instead of 0.07 ms, and the fan-out ran 4× slower.
//! Per-execution (custom) plans are no cure: they are built from the same
//! statistics, and statistics of a table that held only finished tries make
//! a primary-key update scan the live-task index instead (1 ms, not 0.01).
//! No statement form wins against a cost model that is right about a small
//! table; what was wrong is the plans' lifetime. So the table is analyzed
//! once it has outgrown its statistics: new statistics invalidate every
//! session's cached plans, and the next plans are made for the table as it is.
//!
//! The scheduler checks right after it creates a run's task instances (the
//! step that grows the table at once) and on every sweep (slow growth).
//! One `ANALYZE` at a time across schedulers (an advisory lock); it samples
//! at most 30,000 rows, tens of milliseconds, and does not block writers.

use deadpool_postgres::Client;

use super::{DbError, GenericClient};

/// Fewer rows than this never call for new statistics (plans of a small table are cheap whatever they are).
pub const MIN_ROWS: f64 = 1_000.0;
/// Growth since the last statistics that calls for new ones.
pub const GROWTH_FACTOR: f64 = 2.0;

/// Whether a table of `rows_now` rows has outgrown statistics gathered at
/// `analyzed_rows` (negative: never analyzed).
pub fn outgrown(analyzed_rows: f64, rows_now: f64) -> bool {
    rows_now >= MIN_ROWS && rows_now >= analyzed_rows.max(0.0) * GROWTH_FACTOR
}

/// Analyzes `task_instances` if, with `inserted` rows not yet counted by the
/// statistics collector, it has [`outgrown`] its statistics and no other
/// session is analyzing it. Returns whether it did.
pub async fn analyze_task_instances_if_outgrown(db: &mut Client, inserted: u64) -> Result<bool, DbError> {
    let row = db
        .query_one(
            r#"
SELECT c.reltuples::float8, coalesce(s.n_live_tup, 0)::float8
FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE c.oid = 'task_instances'::regclass"#,
            &[],
        )
        .await?;
    let (analyzed, live): (f64, f64) = (row.get(0), row.get(1));
    if !outgrown(analyzed, live.max(analyzed) + inserted as f64) {
        return Ok(false);
    }
    let tx = db.transaction().await?;
    let locked: bool =
        tx.query_one("SELECT pg_try_advisory_xact_lock(hashtext('gust.analyze.task_instances'))", &[]).await?.get(0);
    if locked {
        tx.batch_execute("ANALYZE task_instances").await?;
    }
    tx.commit().await?;
    Ok(locked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_table_never_needs_new_statistics() {
        assert!(!outgrown(-1.0, 999.0));
        assert!(!outgrown(0.0, 200.0));
    }

    #[test]
    fn a_table_that_doubled_since_its_statistics_has_outgrown_them() {
        assert!(outgrown(-1.0, 10_200.0), "never analyzed");
        assert!(outgrown(200.0, 10_200.0), "a fan-out after a chain");
        assert!(outgrown(10_000.0, 20_000.0));
        assert!(!outgrown(10_200.0, 10_400.0), "a chain after a fan-out");
        assert!(!outgrown(1_000_000.0, 1_010_000.0));
    }
}
