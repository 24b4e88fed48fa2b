//! The scheduler moving a run on: create its task instances, read their
//! states, apply the trigger rules' decisions (schedule, skip,
//! upstream_failed), expand mapped tasks, and read the run's outcome.
//!
//! Runs under the run's row lock (`runs::lock_live`), so one scheduler
//! decides for a run at a time; every change is still a compare-and-set on
//! its transition's `from` states, so a task a worker or a person moved
//! meanwhile keeps its state.

use tokio_postgres::Row;
use uuid::Uuid;

use super::state_of;
use crate::{
    dag::TaskSpec,
    db::{signals::Signal, DbError, GenericClient},
    state::{RunState, TaskState, TaskTransition},
};

/// Creates one task instance per task of a run in one statement
/// ([`TaskTransition::Create`]): `scheduled` for tasks without upstreams,
/// `none` for the others.
pub async fn create_for_run(
    db: &impl GenericClient,
    run_pk: i64,
    dag_id: &str,
    run_id: &str,
    tasks: &[TaskSpec],
) -> Result<u64, DbError> {
    let task_ids: Vec<&str> = tasks.iter().map(|t| t.task_id.as_str()).collect();
    let operators: Vec<&str> = tasks.iter().map(|t| t.operator.name()).collect();
    let queues: Vec<&str> = tasks.iter().map(|t| t.queue.as_str()).collect();
    let max_tries: Vec<i32> = tasks.iter().map(|t| i32::try_from(t.retries).unwrap_or(i32::MAX)).collect();
    let pools: Vec<&str> = tasks.iter().map(|t| t.pool.as_str()).collect();
    let pool_slots: Vec<i32> = tasks.iter().map(|t| i32::try_from(t.pool_slots).unwrap_or(i32::MAX)).collect();
    let weights: Vec<i32> = tasks.iter().map(|t| t.priority_weight).collect();
    // A task without upstreams may run whatever its trigger rule: it starts `scheduled`,
    // which spares a large fan-out a second pass over every row before its first dispatch.
    let states: Vec<&str> = tasks
        .iter()
        .map(|t| {
            if t.upstream.is_empty() && t.expand.is_none() { TaskState::Scheduled } else { TaskState::None }.as_str()
        })
        .collect();
    Ok(db
        .execute(
            r#"
INSERT INTO task_instances
    (run_pk, dag_id, run_id, task_id, operator, queue, max_tries, pool, pool_slots, priority_weight, state)
SELECT $1, $2, $3, t.task_id, t.operator, t.queue, t.max_tries, t.pool, t.pool_slots, t.priority_weight, t.state
FROM unnest($4::text[], $5::text[], $6::text[], $7::int[], $8::text[], $9::int[], $10::int[], $11::text[])
    AS t(task_id, operator, queue, max_tries, pool, pool_slots, priority_weight, state)
ON CONFLICT (run_pk, task_id, map_index) DO NOTHING"#,
            &[
                &run_pk,
                &dag_id,
                &run_id,
                &task_ids,
                &operators,
                &queues,
                &max_tries,
                &pools,
                &pool_slots,
                &weights,
                &states,
            ],
        )
        .await?)
}

/// One task instance as the scheduler's readiness pass sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceState {
    /// Primary key.
    pub id: Uuid,
    /// The task.
    pub task_id: String,
    /// -1 unless mapped (a mapped task not expanded yet has one instance at -1).
    pub map_index: i32,
    /// Current state.
    pub state: TaskState,
}

fn instance_state(r: &Row) -> Result<InstanceState, DbError> {
    Ok(InstanceState { id: r.get(0), task_id: r.get(1), map_index: r.get(2), state: state_of(r.get(3))? })
}

/// Every task instance of a run, for scheduling decisions.
pub async fn states_for_run(db: &impl GenericClient, run_pk: i64) -> Result<Vec<InstanceState>, DbError> {
    let rows =
        db.query("SELECT id, task_id, map_index, state FROM task_instances WHERE run_pk = $1", &[&run_pk]).await?;
    rows.iter().map(instance_state).collect()
}

/// Every task instance of the named tasks of a run.
pub async fn states_of_tasks(
    db: &impl GenericClient,
    run_pk: i64,
    task_ids: &[&str],
) -> Result<Vec<InstanceState>, DbError> {
    let statement = db
        .prepare_cached(
            "SELECT id, task_id, map_index, state FROM task_instances WHERE run_pk = $1 AND task_id = ANY($2)",
        )
        .await?;
    let rows = db.query(&statement, &[&run_pk, &task_ids]).await?;
    rows.iter().map(instance_state).collect()
}

/// Applies a scheduling decision to the given task instances: `transition`
/// (one of [`TaskTransition::Schedule`], [`TaskTransition::Skip`],
/// [`TaskTransition::UpstreamFail`]) moves those still in its `from` states
/// to its target. Returns how many moved. The states are bound through
/// `hidden_states!`, so the ids are looked up by primary key.
pub async fn apply(db: &impl GenericClient, ids: &[Uuid], transition: TaskTransition) -> Result<u64, DbError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let next = transition.target();
    let statement = db
        .prepare_cached(concat!(
            r#"
UPDATE task_instances SET state = $2, updated_at = now(),
    end_date = CASE WHEN $4 THEN now() ELSE end_date END
WHERE id = ANY($1) AND state = "#,
            hidden_states!("$3")
        ))
        .await?;
    Ok(db.execute(&statement, &[&ids, &next.as_str(), &transition.from_strs(), &next.is_finished()]).await?)
}

/// Expands a mapped task's placeholder instance (`map_index` -1) into one
/// scheduled instance per element of `items` ([`TaskTransition::Expand`]):
/// the placeholder becomes index 0 and copies of it take the others. Returns
/// false when the placeholder was already expanded or moved on.
pub async fn expand_mapped(
    db: &impl GenericClient,
    placeholder: Uuid,
    items: &[serde_json::Value],
) -> Result<bool, DbError> {
    let Some((first, rest)) = items.split_first() else { return Ok(false) };
    let transition = TaskTransition::Expand;
    let updated = db
        .execute(
            r#"
UPDATE task_instances SET map_index = 0, map_item = $2, state = $4, updated_at = now()
WHERE id = $1 AND map_index = -1 AND state = ANY($3)"#,
            &[&placeholder, first, &transition.from_strs(), &transition.target().as_str()],
        )
        .await?;
    if updated == 0 {
        return Ok(false);
    }
    if !rest.is_empty() {
        // Copies every column of the expanded instance (pool, queue, max_tries…) but its identity and element.
        db.execute(
            r#"
INSERT INTO task_instances
SELECT (jsonb_populate_record(t, jsonb_build_object('id', gen_random_uuid(), 'map_index', i.n, 'map_item', i.item))).*
FROM task_instances t, unnest($2::jsonb[]) WITH ORDINALITY AS i(item, n) WHERE t.id = $1"#,
            &[&placeholder, &rest],
        )
        .await?;
    }
    Ok(true)
}

/// Fails a mapped task's placeholder whose list could not be read (not a
/// list, no XCom, too long), with the reason ([`TaskTransition::FailUnexpandable`]),
/// and wakes the schedulers.
pub async fn fail_unexpandable(db: &impl GenericClient, placeholder: Uuid, reason: &str) -> Result<bool, DbError> {
    let transition = TaskTransition::FailUnexpandable;
    let row = db
        .query_opt(
            r#"
UPDATE task_instances SET state = $4, try_number = 1, failure_reason = $2, start_date = now(),
    end_date = now(), updated_at = now()
WHERE id = $1 AND map_index = -1 AND state = ANY($3)
RETURNING run_pk, task_id"#,
            &[&placeholder, &reason, &transition.from_strs(), &transition.target().as_str()],
        )
        .await?;
    let Some(row) = row else { return Ok(false) };
    Signal::TasksFinished { run_pk: row.get(0), tasks: Some(vec![row.get(1)]) }.send(db).await?;
    Ok(true)
}

/// Whether any task instance of the run is unfinished (served by the partial index on live task instances).
pub async fn any_unfinished(db: &impl GenericClient, run_pk: i64) -> Result<bool, DbError> {
    let statement = db
        .prepare_cached(concat!(
            "SELECT EXISTS (SELECT 1 FROM task_instances WHERE run_pk = $1 AND state IN ",
            unfinished_states!(),
            ")"
        ))
        .await?;
    Ok(db.query_one(&statement, &[&run_pk]).await?.get(0))
}

/// The run's outcome once none of its task instances is unfinished (served
/// by the partial index on live task instances), else `None`: `failed` when
/// one of the `leaves` (tasks without downstream) failed or was upstream_failed.
pub async fn run_outcome(db: &impl GenericClient, run_pk: i64, leaves: &[String]) -> Result<Option<RunState>, DbError> {
    let statement = db
        .prepare_cached(concat!(
            r#"
SELECT CASE
    WHEN EXISTS (SELECT 1 FROM task_instances WHERE run_pk = $1 AND state IN "#,
            unfinished_states!(),
            r#") THEN NULL
    WHEN EXISTS (SELECT 1 FROM task_instances WHERE run_pk = $1 AND task_id = ANY($2)
                 AND state IN ('failed', 'upstream_failed')) THEN 'failed'
    ELSE 'success'
END"#
        ))
        .await?;
    let outcome: Option<String> = db.query_one(&statement, &[&run_pk, &leaves]).await?.get(0);
    Ok(outcome.map(|o| if o == "failed" { RunState::Failed } else { RunState::Success }))
}
