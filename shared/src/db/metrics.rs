//! Reads for the scheduler's Prometheus gauges: one grouped query each, run
//! once per scheduler sweep (not per scrape, not on the hot path).

use super::{DbError, GenericClient};

/// Every pool with the slots its running, queued and scheduled task instances take (`gust_pool_slots`).
pub use super::pools::{all_stats as pool_slots, PoolRow};

/// How many unfinished task instances there are per `(state, queue)`
/// (`gust_task_instances`). Finished states are left out: they grow with
/// history, and the partial index on live task instances serves this query.
pub async fn live_task_instances(db: &impl GenericClient) -> Result<Vec<(String, String, i64)>, DbError> {
    let rows = db
        .query(
            concat!(
                "SELECT state, queue, count(*) FROM task_instances WHERE state IN ",
                unfinished_states!(),
                " GROUP BY state, queue"
            ),
            &[],
        )
        .await?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1), row.get(2))).collect())
}
