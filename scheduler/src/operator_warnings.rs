//! Warnings about scheduled tasks whose custom operator no live worker of
//! their queue advertises: they stay `scheduled` until such a worker starts
//! (see "Extending gust" in the README). Each task is named once.

use std::collections::HashSet;

use deadpool_postgres::Pool;
use gust_shared::db::{heartbeats::unserved_operator, task_instances::dispatch::waiting_for_operator};
use uuid::Uuid;

/// Tasks already warned about.
#[derive(Default)]
pub struct OperatorWarnings {
    warned: HashSet<Uuid>,
}

impl OperatorWarnings {
    /// Logs each task newly found waiting for its operator, once.
    pub async fn check(&mut self, db: &Pool) {
        let waiting = match db.get().await {
            Ok(client) => waiting_for_operator(&client).await,
            Err(e) => Err(e.into()),
        };
        let waiting = match waiting {
            Ok(waiting) => waiting,
            Err(e) => {
                tracing::warn!(error = %e, "checking tasks waiting for a custom operator failed");
                return;
            }
        };
        self.warned.retain(|id| waiting.iter().any(|w| &w.id == id));
        for task in waiting {
            if self.warned.insert(task.id) {
                tracing::warn!(
                    dag_id = %task.dag_id, run_id = %task.run_id, task_id = %task.task_id,
                    operator = %task.operator, queue = %task.queue,
                    "task stays scheduled: {}",
                    unserved_operator(&task.operator, &task.queue)
                );
            }
        }
    }
}
