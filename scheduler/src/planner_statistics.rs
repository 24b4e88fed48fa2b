//! Keeps the planner's statistics of `task_instances` in step with its size
//! (why: `gust_shared::db::planner_statistics`), in the background so that
//! no scheduling step waits for an `ANALYZE`.

use deadpool_postgres::Pool;
use gust_shared::db::planner_statistics::analyze_task_instances_if_outgrown;

/// Analyzes `task_instances` in the background if, with `inserted` rows just
/// committed, it has outgrown its statistics.
pub fn refresh_if_outgrown(pool: &Pool, inserted: u64) {
    let pool = pool.clone();
    tokio::spawn(async move {
        let analyzed = match pool.get().await {
            Ok(mut client) => analyze_task_instances_if_outgrown(&mut client, inserted).await,
            Err(e) => Err(e.into()),
        };
        match analyzed {
            Ok(true) => tracing::info!(inserted, "task_instances outgrew its planner statistics: analyzed"),
            Ok(false) => {}
            Err(e) => tracing::warn!(
                error = %e,
                "analyzing task_instances failed; its plans stay those of a smaller table until it is analyzed"
            ),
        }
    });
}
