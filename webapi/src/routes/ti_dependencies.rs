//! `GET …/taskInstances/{task_id}/dependencies` and `…/{map_index}/dependencies`:
//! why a task instance that has not been queued yet is not running (Airflow's
//! `get_task_instance_dependencies`), worked out from what gust's scheduler
//! and dispatch look at: the run's state (and, for a run that has not
//! started, whether the DAG is paused), the task's trigger rule against its
//! upstream tasks' states, its pool's free slots, the DAG's
//! `max_active_tasks` and, for a custom operator, a worker that has it.
//! Empty when nothing holds it back, and for task instances that are queued,
//! running or finished, as in Airflow.

use axum::{extract::State, Json};
use gust_shared::{
    dag::{TaskSpec, TriggerOutcome, UpstreamCounts},
    db::{self, runs::DagRunRow, task_instances::listing, task_instances::listing::TaskInstanceRow, GenericClient},
    state::{RunState, TaskState},
};
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    dag_runs::{definition_of, run_or_404},
    path_params::{MappedTaskInstancePath, TaskInstancePath},
    task_instances::{ti_or_404, MapIndexParams},
};
use crate::{
    error::ApiError,
    extract::{ApiPath, ApiQuery},
    AppState,
};

/// Airflow's `TaskDependencyResponse`: one thing a task instance waits for.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub(crate) struct TaskDependencyResponse {
    /// The dependency, by Airflow's name (`Trigger Rule`, `Pool Slots Available`, …).
    name: String,
    /// Why it is not met, and what would meet it.
    reason: String,
}

/// Airflow's `TaskDependencyCollectionResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TaskDependencyCollection {
    dependencies: Vec<TaskDependencyResponse>,
}

/// `GET …/taskInstances/{task_id}/dependencies?map_index`
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/dependencies", operation_id = "get_task_instance_dependencies", tag = "Task Instance", params(TaskInstancePath, MapIndexParams), responses((status = 200, body = TaskDependencyCollection)))]
pub(crate) async fn get(
    State(state): State<AppState>,
    ApiPath((dag_id, run_id, task_id)): ApiPath<(String, String, String)>,
    ApiQuery(params): ApiQuery<MapIndexParams>,
) -> Result<Json<TaskDependencyCollection>, ApiError> {
    dependencies(&state, (&dag_id, &run_id, &task_id), params.map_index()).await
}

/// `GET …/taskInstances/{task_id}/{map_index}/dependencies`
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}/dependencies", operation_id = "get_task_instance_dependencies_by_map_index", tag = "Task Instance", params(MappedTaskInstancePath), responses((status = 200, body = TaskDependencyCollection)))]
pub(crate) async fn get_mapped(
    State(state): State<AppState>,
    ApiPath((dag_id, run_id, task_id, map_index)): ApiPath<(String, String, String, i32)>,
) -> Result<Json<TaskDependencyCollection>, ApiError> {
    dependencies(&state, (&dag_id, &run_id, &task_id), map_index).await
}

/// What holds the task instance back, sorted by name.
async fn dependencies(
    state: &AppState,
    (dag_id, run_id, task_id): (&str, &str, &str),
    map_index: i32,
) -> Result<Json<TaskDependencyCollection>, ApiError> {
    let db = state.db().await?;
    let run = run_or_404(&db, dag_id, run_id).await?;
    let ti = ti_or_404(&db, dag_id, run_id, task_id, map_index).await?;
    let mut dependencies = Vec::new();
    if matches!(ti.state, TaskState::None | TaskState::Scheduled) {
        dependencies.extend(run_dependencies(&db, &run).await?);
        if ti.state == TaskState::None {
            let version = definition_of(&db, &run).await?;
            let run_tis = listing::list_for_run(&db, run.id).await?;
            dependencies.extend(trigger_rule_dependency(&version.definition.tasks, &ti, &run_tis));
        }
        dependencies.extend(slot_dependencies(&db, &ti).await?);
        if ti.state == TaskState::Scheduled && listing::waits_for_operator(&db, ti.id).await? {
            dependencies.push(dependency(
                "Operator Available",
                format!(
                    "no live worker consuming queue `{}` advertises the custom operator `{}`; start one with \
                     `gust-op-{}` on its plugin path",
                    ti.queue, ti.operator, ti.operator
                ),
            ));
        }
    }
    dependencies.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(TaskDependencyCollection { dependencies }))
}

fn dependency(name: &str, reason: String) -> TaskDependencyResponse {
    TaskDependencyResponse { name: name.to_string(), reason }
}

/// The run must be running; a queued run of a paused DAG does not start.
async fn run_dependencies(db: &impl GenericClient, run: &DagRunRow) -> Result<Vec<TaskDependencyResponse>, ApiError> {
    let mut found = Vec::new();
    if run.state != RunState::Running {
        found.push(dependency(
            "Dagrun Running",
            format!("the task instance's DAG run `{}` is `{}`, not `running`", run.run_id, run.state),
        ));
    }
    if run.state == RunState::Queued && db::runs::dag_is_paused(db, &run.dag_id).await? {
        found.push(dependency(
            "Dag Not Paused",
            format!("DAG `{}` is paused, so its queued runs do not start; unpause it", run.dag_id),
        ));
    }
    Ok(found)
}

/// What the task's trigger rule makes of its direct upstream tasks' states in
/// the run, when that keeps the task from being scheduled.
fn trigger_rule_dependency(
    tasks: &[TaskSpec],
    ti: &TaskInstanceRow,
    run_tis: &[TaskInstanceRow],
) -> Option<TaskDependencyResponse> {
    let Some(task) = tasks.iter().find(|t| t.task_id == ti.task_id) else {
        return Some(dependency(
            "Task In Dag",
            format!("task `{}` is not in the DAG version of this run, so it is never scheduled", ti.task_id),
        ));
    };
    let upstream: Vec<&TaskInstanceRow> = run_tis.iter().filter(|t| task.upstream.contains(&t.task_id)).collect();
    let counts = UpstreamCounts::of(upstream.iter().map(|t| t.state));
    let rule = task.trigger_rule;
    let states: Vec<String> = upstream
        .iter()
        .map(|t| {
            let mapped = if t.map_index >= 0 { format!("[{}]", t.map_index) } else { String::new() };
            format!("{}{mapped}: {}", t.task_id, t.state)
        })
        .collect();
    let states = states.join(", ");
    let reason = match rule.evaluate(counts) {
        TriggerOutcome::Run => return None,
        TriggerOutcome::Wait => format!(
            "trigger rule `{rule}` is not met yet: {} of {} upstream task instances finished ({states})",
            counts.done(),
            counts.total
        ),
        TriggerOutcome::Skip => {
            format!("trigger rule `{rule}` can no longer be met ({states}); the scheduler marks the task `skipped`")
        }
        TriggerOutcome::UpstreamFailed => format!(
            "trigger rule `{rule}` can no longer be met ({states}); the scheduler marks the task `upstream_failed`"
        ),
    };
    Some(dependency("Trigger Rule", reason))
}

/// The task instance's pool must exist and have its slots free, and its DAG
/// must be under `max_active_tasks`.
async fn slot_dependencies(
    db: &impl GenericClient,
    ti: &TaskInstanceRow,
) -> Result<Vec<TaskDependencyResponse>, ApiError> {
    let mut found = Vec::new();
    match db::pools::get(db, &ti.pool).await? {
        None => found.push(dependency(
            "Pool Slots Available",
            format!("pool `{}` does not exist, so the task is never dispatched; create it", ti.pool),
        )),
        Some(pool) if pool.open_slots() < i64::from(ti.pool_slots) => found.push(dependency(
            "Pool Slots Available",
            format!(
                "pool `{}` has {} open slots and the task needs {}; it waits for queued or running tasks of the pool \
                 to finish",
                ti.pool,
                pool.open_slots().max(0),
                ti.pool_slots
            ),
        )),
        Some(_) => {}
    }
    if let Some(dag) = db::dags::get(db, &ti.dag_id).await? {
        let in_flight = listing::in_flight_for_dag(db, &ti.dag_id).await?;
        if in_flight >= i64::from(dag.max_active_tasks) {
            found.push(dependency(
                "Task Instance Slots Available",
                format!(
                    "DAG `{}` has {in_flight} task instances queued or running, its `max_active_tasks` ({})",
                    ti.dag_id, dag.max_active_tasks
                ),
            ));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ti(task_id: &str, state: TaskState) -> TaskInstanceRow {
        TaskInstanceRow {
            id: uuid::Uuid::new_v4(),
            run_pk: 1,
            dag_id: "etl".into(),
            run_id: "r1".into(),
            task_id: task_id.into(),
            map_index: -1,
            operator: "noop".into(),
            queue: "default".into(),
            state,
            try_number: 0,
            max_tries: 0,
            hostname: None,
            pid: None,
            exit_code: None,
            failure_reason: None,
            next_retry_at: None,
            queued_at: None,
            start_date: None,
            end_date: None,
            updated_at: chrono::Utc::now(),
            rendered_fields: None,
            pool: "default_pool".into(),
            pool_slots: 1,
            priority_weight: 1,
        }
    }

    fn tasks(yaml_tasks: &str) -> Vec<TaskSpec> {
        let yaml = format!("dag_id: d\nstart_date: 2026-01-01\ntasks:\n{yaml_tasks}");
        gust_shared::dag::parse_dag_file("dags/d.yaml", &yaml).expect("the test DAG parses").tasks
    }

    #[test]
    fn a_task_whose_upstreams_are_still_running_waits_on_its_trigger_rule() {
        let tasks = tasks("  - {id: a, operator: noop}\n  - {id: b, operator: noop, depends_on: [a]}\n");
        let run = [ti("a", TaskState::Running), ti("b", TaskState::None)];
        let found = trigger_rule_dependency(&tasks, &run[1], &run).expect("b waits");
        assert_eq!(found.name, "Trigger Rule");
        assert!(
            found.reason.contains("`all_success`")
                && found.reason.contains("0 of 1")
                && found.reason.contains("a: running"),
            "{}",
            found.reason
        );
    }

    #[test]
    fn a_met_trigger_rule_holds_nothing_back() {
        let tasks = tasks("  - {id: a, operator: noop}\n  - {id: b, operator: noop, depends_on: [a]}\n");
        let run = [ti("a", TaskState::Success), ti("b", TaskState::None)];
        assert_eq!(trigger_rule_dependency(&tasks, &run[1], &run), None);
        assert_eq!(trigger_rule_dependency(&tasks, &run[0], &run), None, "a task without upstreams runs");
    }

    #[test]
    fn a_rule_that_can_no_longer_be_met_says_what_the_scheduler_will_do() {
        let tasks = tasks("  - {id: a, operator: noop}\n  - {id: b, operator: noop, depends_on: [a]}\n");
        let run = [ti("a", TaskState::Failed), ti("b", TaskState::None)];
        let found = trigger_rule_dependency(&tasks, &run[1], &run).expect("b is blocked");
        assert!(found.reason.contains("`upstream_failed`"), "{}", found.reason);
    }
}
