//! Warnings about scheduled tasks that wait for a pool in vain: the pool does
//! not exist, or the task needs more slots than the pool has. Such tasks stay
//! `scheduled` (as in Airflow) and run once the pool is created or grown.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use deadpool_postgres::Pool;
use gust_shared::db::pools::{self, PoolProblem};

/// How often the same problem is logged again while it lasts.
const REPEAT_AFTER: Duration = Duration::from_secs(60);

/// Problems already logged, and when.
#[derive(Default)]
pub struct PoolWarnings {
    logged: HashMap<String, Instant>,
}

impl PoolWarnings {
    /// Logs every pool problem not logged within [`REPEAT_AFTER`].
    pub async fn check(&mut self, db: &Pool) {
        let problems = match db.get().await {
            Ok(client) => pools::problems(&client).await,
            Err(e) => Err(e.into()),
        };
        let problems = match problems {
            Ok(problems) => problems,
            Err(e) => {
                tracing::warn!(error = %e, "checking pools failed");
                return;
            }
        };
        self.logged.retain(|pool, _| problems.iter().any(|p| &p.pool == pool));
        for problem in problems {
            let now = Instant::now();
            if self.logged.get(&problem.pool).is_some_and(|at| now.duration_since(*at) < REPEAT_AFTER) {
                continue;
            }
            self.logged.insert(problem.pool.clone(), now);
            tracing::warn!(pool = %problem.pool, waiting = problem.waiting, "{}", describe(&problem));
        }
    }
}

/// What is wrong with a pool and how to fix it.
fn describe(problem: &PoolProblem) -> String {
    let PoolProblem { pool, slots, max_pool_slots, waiting } = problem;
    match slots {
        None => format!(
            "{waiting} task instance(s) wait for pool `{pool}`, which does not exist; they stay scheduled until it is \
             created, e.g. POST /api/v2/pools {{\"name\": \"{pool}\", \"slots\": 4}}"
        ),
        Some(slots) => format!(
            "a task instance needs {max_pool_slots} slots of pool `{pool}`, which has only {slots}; it stays scheduled \
             until the pool grows, e.g. PATCH /api/v2/pools/{pool} {{\"slots\": {max_pool_slots}}}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_pool_is_named_with_how_to_create_it() {
        let text = describe(&PoolProblem { pool: "gpu".into(), slots: None, max_pool_slots: 1, waiting: 3 });
        assert!(text.contains("pool `gpu`, which does not exist"), "{text}");
        assert!(text.contains("POST /api/v2/pools {\"name\": \"gpu\""), "{text}");
    }

    #[test]
    fn a_task_bigger_than_its_pool_is_named_with_how_to_grow_it() {
        let text = describe(&PoolProblem { pool: "etl".into(), slots: Some(2), max_pool_slots: 3, waiting: 1 });
        assert!(text.contains("needs 3 slots of pool `etl`, which has only 2"), "{text}");
        assert!(text.contains("PATCH /api/v2/pools/etl {\"slots\": 3}"), "{text}");
    }
}
