//! Repairs by hand through the API: clear (run again) and mark (set the
//! outcome). Both are compare-and-sets on their transition's `from` states,
//! so a task instance that moved since the caller looked is left alone, and
//! a worker whose running try was marked finds it no longer running: its
//! late result changes nothing.

use std::collections::BTreeSet;

use uuid::Uuid;

use crate::{
    db::{signals::Signal, xcom, DbError, GenericClient},
    state::TaskTransition,
};

/// Resets task instances to `none` so the scheduler runs them again
/// (Airflow's clear, [`TaskTransition::Clear`]): each gets `retries[i]` more
/// tries from its current one, and its XComs are deleted. Only finished (and
/// `up_for_retry`) ones move; returns the ids that did. Does not notify: the
/// caller requeues the run or calls [`Signal::run_changed`].
pub async fn clear(db: &impl GenericClient, ids: &[Uuid], retries: &[i32]) -> Result<Vec<Uuid>, DbError> {
    let transition = TaskTransition::Clear;
    let rows = db
        .query(
            r#"
UPDATE task_instances ti SET state = $4, max_tries = ti.try_number + c.retries, end_date = NULL,
    exit_code = NULL, failure_reason = NULL, next_retry_at = NULL, hostname = NULL, pid = NULL,
    start_date = NULL, queued_at = NULL, updated_at = now()
FROM unnest($1::uuid[], $2::int[]) AS c(id, retries)
WHERE ti.id = c.id AND ti.state = ANY($3)
RETURNING ti.id"#,
            &[&ids, &retries, &transition.from_strs(), &transition.target().as_str()],
        )
        .await?;
    let cleared: Vec<Uuid> = rows.iter().map(|r| r.get(0)).collect();
    xcom::delete_for(db, &cleared).await?;
    Ok(cleared)
}

/// Marks task instances by hand (Airflow's "mark success/failed/skipped";
/// `transition` is one of [`TaskTransition::MarkSuccess`],
/// [`TaskTransition::MarkFailed`], [`TaskTransition::MarkSkipped`]) where
/// they are in its `from` states, and wakes the schedulers for their runs.
/// Returns the ids that moved.
pub async fn mark(db: &impl GenericClient, ids: &[Uuid], transition: TaskTransition) -> Result<Vec<Uuid>, DbError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let next = transition.target();
    let rows = db
        .query(
            r#"
UPDATE task_instances SET state = $2, updated_at = now(), next_retry_at = NULL,
    end_date = CASE WHEN $4 THEN now() ELSE end_date END
WHERE id = ANY($1) AND state = ANY($3)
RETURNING id, run_pk"#,
            &[&ids, &next.as_str(), &transition.from_strs(), &next.is_finished()],
        )
        .await?;
    let runs: BTreeSet<i64> = rows.iter().map(|r| r.get(1)).collect();
    for run_pk in runs {
        Signal::run_changed(db, run_pk).await?;
    }
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
