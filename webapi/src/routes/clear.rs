//! `POST /api/v2/dags/{dag_id}/clearTaskInstances`: reset finished task
//! instances of a run to "no status" so the scheduler runs them again
//! (Airflow's clear), optionally with their upstream or downstream tasks.

use super::path_params::DagPath;
use std::collections::{HashMap, HashSet};
use utoipa::ToSchema;

use axum::{extract::State, Json};
use gust_shared::{
    dag::TaskSpec,
    db::{
        self,
        signals::Signal,
        task_instances::{listing, listing::TaskInstanceRow, repair},
    },
    state::{TaskState, TaskTransition},
};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    dag_runs::{definition_of, run_or_404},
    task_graph::{relatives, unknown_tasks, Include},
    task_instances::TaskInstanceCollection,
};
use crate::{
    error::ApiError,
    extract::{ApiJson, ApiPath},
    AppState,
};

/// Body of the route (Airflow's `ClearTaskInstancesBody`; note that `dry_run`
/// and `only_failed` default to true, as in Airflow). `start_date` and
/// `end_date` are accepted and, as in Airflow when a run is named, ignored.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct ClearBody {
    #[serde(default = "yes")]
    dry_run: bool,
    task_ids: Option<Vec<TaskSelector>>,
    /// The run to clear in (required: clearing across runs is not supported yet).
    #[schema(value_type = String, required = true)]
    dag_run_id: Option<String>,
    #[serde(default = "yes")]
    only_failed: bool,
    #[serde(default)]
    #[schema(schema_with = crate::openapi::only_false)]
    only_running: bool,
    #[serde(default = "yes")]
    reset_dag_runs: bool,
    #[serde(default)]
    include_upstream: bool,
    #[serde(default)]
    include_downstream: bool,
    #[serde(default)]
    #[schema(schema_with = crate::openapi::only_false)]
    include_future: bool,
    #[serde(default)]
    #[schema(schema_with = crate::openapi::only_false)]
    include_past: bool,
}

/// The serde default of the flags Airflow defaults to true.
fn yes() -> bool {
    true
}

/// One entry of `task_ids`: a task, or one mapped instance of it as `[task_id, map_index]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
enum TaskSelector {
    /// Every instance of the task.
    Task(String),
    /// The instance with this map index.
    Mapped(String, i32),
}

impl utoipa::PartialSchema for TaskSelector {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, ArrayItems, ObjectBuilder, OneOfBuilder, Type};
        let task_id = || ObjectBuilder::new().schema_type(Type::String).build();
        let map_index = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Int32)))
            .build();
        let mapped = ArrayBuilder::new()
            .prefix_items([task_id(), map_index])
            .items(ArrayItems::False)
            .min_items(Some(2))
            .description(Some("The instance with this map index: `[task_id, map_index]`"));
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::String).description(Some("Every instance of the task")))
            .item(mapped)
            .description(Some("A task, or one mapped instance of it as `[task_id, map_index]`"))
            .into()
    }
}

impl utoipa::ToSchema for TaskSelector {}

/// What to clear in the run, checked.
#[derive(Debug, PartialEq)]
struct Selection {
    /// The chosen tasks, `None` for every task of the run.
    task_ids: Option<Vec<TaskSelector>>,
    include: Include,
    only_failed: bool,
}

/// `POST /api/v2/dags/{dag_id}/clearTaskInstances`: answers the task
/// instances cleared (or, with `dry_run`, that would be).
#[utoipa::path(post, path = "/api/v2/dags/{dag_id}/clearTaskInstances", tag = "Task Instance", params(DagPath), request_body = ClearBody, responses((status = 200, description = "The task instances cleared (or, with `dry_run`, that would be)", body = TaskInstanceCollection)))]
pub(crate) async fn clear(
    State(state): State<AppState>,
    ApiPath(dag_id): ApiPath<String>,
    ApiJson(body): ApiJson<ClearBody>,
) -> Result<Json<TaskInstanceCollection>, ApiError> {
    let (run_id, selection) = checked(&body)?;
    let mut db = state.db().await?;
    let tx = db.transaction().await?;
    let run = run_or_404(&tx, &dag_id, &run_id).await?;
    let version = definition_of(&tx, &run).await?;
    let tasks = &version.definition.tasks;
    let tis = listing::list_for_run(&tx, run.id).await?;
    let picked = pick(tasks, tis, &selection).map_err(|unknown| {
        let named: Vec<String> = unknown.iter().map(|id| format!("`{id}`")).collect();
        ApiError::BadRequest(format!(
            "DAG `{dag_id}` (version {} of run `{run_id}`) has no task {}",
            version.version_number,
            named.join(", ")
        ))
    })?;
    if body.dry_run {
        return Ok(Json(TaskInstanceCollection::of_run(picked, &run)));
    }

    let retries_by_task: HashMap<&str, i32> =
        tasks.iter().map(|t| (t.task_id.as_str(), i32::try_from(t.retries).unwrap_or(i32::MAX))).collect();
    let ids: Vec<Uuid> = picked.iter().map(|ti| ti.id).collect();
    let retries: Vec<i32> =
        picked.iter().map(|ti| retries_by_task.get(ti.task_id.as_str()).copied().unwrap_or(0)).collect();
    let cleared: HashSet<Uuid> = repair::clear(&tx, &ids, &retries).await?.into_iter().collect();
    let requeued = !cleared.is_empty() && body.reset_dag_runs && db::runs::requeue(&tx, run.id).await?;
    if !cleared.is_empty() && !requeued {
        // A requeued run notifies on its own.
        Signal::run_changed(&tx, run.id).await?;
    }
    let after: Vec<TaskInstanceRow> =
        listing::list_for_run(&tx, run.id).await?.into_iter().filter(|ti| cleared.contains(&ti.id)).collect();
    tx.commit().await?;
    tracing::info!(dag_id, run_id, cleared = after.len(), requeued, "task instances cleared through the API");
    Ok(Json(TaskInstanceCollection::of_run(after, &run)))
}

/// The run to clear and what to clear in it; 400 for what gust cannot do yet.
fn checked(body: &ClearBody) -> Result<(String, Selection), ApiError> {
    let Some(run_id) = body.dag_run_id.clone() else {
        return Err(ApiError::BadRequest("dag_run_id is required (clearing across runs is not supported yet)".into()));
    };
    if body.only_running {
        return Err(ApiError::BadRequest(
            "`only_running` is not supported: running task instances are never cleared; leave it out or false".into(),
        ));
    }
    if body.include_future || body.include_past {
        return Err(ApiError::BadRequest(
            "`include_future` and `include_past` (the same tasks in other runs) are not supported yet; \
             clear each run on its own"
                .into(),
        ));
    }
    let selection = Selection {
        task_ids: body.task_ids.clone(),
        include: Include { upstream: body.include_upstream, downstream: body.include_downstream },
        only_failed: body.only_failed,
    };
    Ok((run_id, selection))
}

/// Whether a clear resets a task instance in `state`: one that
/// [`TaskTransition::Clear`] moves (finished or waiting for a retry, never a
/// live one); with `only_failed`, only failed and upstream_failed ones.
/// Serves this route and a run's `…/clear`.
pub(crate) fn clears(state: TaskState, only_failed: bool) -> bool {
    TaskTransition::Clear.moves(state)
        && (!only_failed || matches!(state, TaskState::Failed | TaskState::UpstreamFailed))
}

/// The task instances of the run the selection covers and that a clear would
/// reset, in the run's order; or the chosen task ids the definition lacks.
fn pick(
    tasks: &[TaskSpec],
    tis: Vec<TaskInstanceRow>,
    selection: &Selection,
) -> Result<Vec<TaskInstanceRow>, Vec<String>> {
    let chosen: Vec<&str> = match &selection.task_ids {
        None => tasks.iter().map(|t| t.task_id.as_str()).collect(),
        Some(selectors) => selectors
            .iter()
            .map(|s| match s {
                TaskSelector::Task(id) | TaskSelector::Mapped(id, _) => id.as_str(),
            })
            .collect(),
    };
    let unknown = unknown_tasks(tasks, &chosen);
    if !unknown.is_empty() {
        return Err(unknown.into_iter().map(str::to_string).collect());
    }
    // Per chosen task, the map indexes asked for (`None`: all of them).
    let mut indexes: HashMap<&str, Option<Vec<i32>>> = HashMap::new();
    for selector in selection.task_ids.iter().flatten() {
        match selector {
            TaskSelector::Task(id) => {
                indexes.insert(id, None);
            }
            TaskSelector::Mapped(id, index) => {
                if let Some(wanted) = indexes.entry(id).or_insert_with(|| Some(Vec::new())) {
                    wanted.push(*index);
                }
            }
        }
    }
    let reached = relatives(tasks, &chosen, selection.include);
    let covered = |ti: &TaskInstanceRow| {
        reached.contains(&ti.task_id)
            || match indexes.get(ti.task_id.as_str()) {
                Some(Some(wanted)) => wanted.contains(&ti.map_index),
                Some(None) => true,
                None => selection.task_ids.is_none(),
            }
    };
    Ok(tis.into_iter().filter(|ti| covered(ti) && clears(ti.state, selection.only_failed)).collect())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tasks() -> Vec<TaskSpec> {
        let yaml = r#"
dag_id: chain
start_date: 2026-01-01
tasks:
  - {id: a, operator: noop}
  - {id: b, operator: noop, depends_on: [a]}
  - {id: c, operator: noop, depends_on: [b]}
  - {id: m, operator: noop}
"#;
        gust_shared::dag::parse_dag_file("dags/chain.yaml", yaml).expect("the test DAG parses").tasks
    }

    fn ti(task_id: &str, map_index: i32, state: TaskState) -> TaskInstanceRow {
        TaskInstanceRow {
            id: Uuid::new_v4(),
            run_pk: 1,
            dag_id: "chain".into(),
            run_id: "r1".into(),
            task_id: task_id.into(),
            map_index,
            operator: "noop".into(),
            queue: "default".into(),
            state,
            try_number: 1,
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

    fn run_tis() -> Vec<TaskInstanceRow> {
        vec![
            ti("a", -1, TaskState::Failed),
            ti("b", -1, TaskState::UpstreamFailed),
            ti("c", -1, TaskState::Success),
            ti("m", 0, TaskState::Failed),
            ti("m", 1, TaskState::Running),
            ti("m", 2, TaskState::Failed),
        ]
    }

    fn body(value: serde_json::Value) -> ClearBody {
        serde_json::from_value(value).expect("a valid body")
    }

    fn picked(value: serde_json::Value) -> Result<Vec<(String, i32)>, Vec<String>> {
        let body = body(value);
        let (_, selection) = checked(&body).expect("a supported request");
        let tis = pick(&tasks(), run_tis(), &selection)?;
        Ok(tis.into_iter().map(|ti| (ti.task_id, ti.map_index)).collect())
    }

    fn pairs(expected: &[(&str, i32)]) -> Vec<(String, i32)> {
        expected.iter().map(|(t, m)| (t.to_string(), *m)).collect()
    }

    #[test]
    fn airflows_defaults_are_a_dry_run_of_failed_tasks_that_resets_the_run() {
        let body = body(json!({"dag_run_id": "r1"}));
        assert!(body.dry_run && body.only_failed && body.reset_dag_runs);
        assert!(!body.only_running && !body.include_upstream && !body.include_downstream);
    }

    #[test]
    fn only_failed_keeps_failed_and_upstream_failed_and_never_running() {
        assert_eq!(picked(json!({"dag_run_id": "r1"})).unwrap(), pairs(&[("a", -1), ("b", -1), ("m", 0), ("m", 2)]));
        let everything = picked(json!({"dag_run_id": "r1", "only_failed": false})).unwrap();
        assert_eq!(everything, pairs(&[("a", -1), ("b", -1), ("c", -1), ("m", 0), ("m", 2)]));
    }

    #[test]
    fn include_downstream_adds_the_tasks_that_depend_on_the_chosen_ones() {
        let body = json!({"dag_run_id": "r1", "task_ids": ["a"], "include_downstream": true, "only_failed": false});
        assert_eq!(picked(body).unwrap(), pairs(&[("a", -1), ("b", -1), ("c", -1)]));
        assert_eq!(picked(json!({"dag_run_id": "r1", "task_ids": ["a"]})).unwrap(), pairs(&[("a", -1)]));
    }

    #[test]
    fn include_upstream_adds_the_tasks_the_chosen_ones_depend_on() {
        let body = json!({"dag_run_id": "r1", "task_ids": ["c"], "include_upstream": true});
        assert_eq!(picked(body).unwrap(), pairs(&[("a", -1), ("b", -1)]), "c succeeded, so only_failed drops it");
    }

    #[test]
    fn a_task_and_map_index_pair_picks_that_instance_only() {
        let body = json!({"dag_run_id": "r1", "task_ids": [["m", 2]]});
        assert_eq!(picked(body).unwrap(), pairs(&[("m", 2)]));
    }

    #[test]
    fn unknown_task_ids_are_named() {
        assert_eq!(picked(json!({"dag_run_id": "r1", "task_ids": ["a", "ghost"]})).unwrap_err(), ["ghost"]);
    }

    #[test]
    fn a_missing_run_only_running_and_other_runs_are_refused_with_a_reason() {
        let refused = |value: serde_json::Value| {
            let body = body(value);
            checked(&body).unwrap_err().to_string()
        };
        assert_eq!(refused(json!({})), "dag_run_id is required (clearing across runs is not supported yet)");
        assert!(refused(json!({"dag_run_id": "r1", "only_running": true})).contains("only_running"));
        assert!(refused(json!({"dag_run_id": "r1", "include_past": true})).contains("include_past"));
    }
}
