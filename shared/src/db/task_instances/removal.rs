//! Deleting task instances through the API (Airflow's `delete_task_instance`
//! and the bulk delete): the row goes, and with it its tries, logs and XComs
//! (the foreign keys cascade). Not a state change, so no transition guards it;
//! the API only deletes task instances of runs that have finished.

use uuid::Uuid;

use crate::db::{DbError, GenericClient};

/// Deletes the task instances with these ids; returns the ids that were there.
pub async fn delete(db: &impl GenericClient, ids: &[Uuid]) -> Result<Vec<Uuid>, DbError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = db.query("DELETE FROM task_instances WHERE id = ANY($1) RETURNING id", &[&ids]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
