//! What sensors read from gust's own tables (worker, `external_task_sensor`):
//! the state of another DAG's run, or of its task's instances, for one
//! logical date. Reads only.

use chrono::{DateTime, Utc};

use crate::db::{DbError, GenericClient};

/// The state of the run of `dag_id` for `logical_date`, with its `run_id`, if there is one.
pub async fn run_state(
    db: &impl GenericClient,
    dag_id: &str,
    logical_date: DateTime<Utc>,
) -> Result<Option<(String, String)>, DbError> {
    let row = db
        .query_opt(
            "SELECT run_id, state FROM dag_runs WHERE dag_id = $1 AND logical_date = $2",
            &[&dag_id, &logical_date],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// The states of task `task_id`'s instances (one per map index) in the run
/// of `dag_id` for `logical_date`, with its `run_id`; `None` when there is no such run.
pub async fn task_states(
    db: &impl GenericClient,
    dag_id: &str,
    task_id: &str,
    logical_date: DateTime<Utc>,
) -> Result<Option<(String, Vec<String>)>, DbError> {
    let rows = db
        .query(
            r#"
SELECT r.run_id, ti.state
FROM dag_runs r LEFT JOIN task_instances ti ON ti.run_pk = r.id AND ti.task_id = $2
WHERE r.dag_id = $1 AND r.logical_date = $3
ORDER BY ti.map_index"#,
            &[&dag_id, &task_id, &logical_date],
        )
        .await?;
    let Some(first) = rows.first() else { return Ok(None) };
    let states = rows.iter().filter_map(|r| r.get::<_, Option<String>>(1)).collect();
    Ok(Some((first.get(0), states)))
}
