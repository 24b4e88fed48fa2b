//! `PATCH …/dagRuns/{dag_run_id}/taskInstances` (Airflow's
//! `bulk_task_instances`: a `BulkBody` of update and delete actions on task
//! instances, in one transaction, answered with a `BulkResponse` of what
//! succeeded and what failed, entity by entity).
//!
//! An update marks the task instances as `PATCH …/taskInstances/{task_id}`
//! does (the same checks and compare-and-sets, [`mark::mark_in`]); a delete
//! removes them as `DELETE …/taskInstances/{task_id}` does and, like it,
//! needs the admin role and a finished run. Create is refused per action, as
//! in Airflow.

use std::collections::BTreeSet;

use axum::{extract::State, Extension, Json};
use gust_shared::db::{
    self,
    task_instances::{listing::TaskInstanceRow, removal},
    GenericClient,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::{
    bulk::{bulk_body_schema, OnExistence},
    dag_runs::run_or_404,
    mark::{self, PatchBody},
    path_params::RunPath,
    task_instances::refuse_live_run,
};
use crate::{
    auth::{CurrentUser, Role},
    error::ApiError,
    extract::{ApiJson, ApiPath},
    AppState,
};

/// Most entities one bulk request may name, over all its actions.
const MAX_ENTITIES: usize = 1000;

/// The path segment Airflow uses for "every DAG" and "every run".
const ALL: &str = "~";

/// Airflow's `BulkBody[BulkTaskInstanceBody]` (documented as [`TaskInstanceBulkBody`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BulkBody {
    actions: Vec<BulkAction>,
}

bulk_body_schema!(TaskInstanceBulkBody, BulkTaskInstanceBody);

/// One action of a bulk request.
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum BulkAction {
    /// Refused: task instances are made by the scheduler.
    Create {
        entities: Vec<BulkTaskInstanceBody>,
        /// Accepted for Airflow's shape; create is refused whatever it says.
        #[serde(default, rename = "action_on_existence")]
        _action_on_existence: OnExistence,
    },
    /// Marks task instances.
    Update {
        entities: Vec<BulkTaskInstanceBody>,
        #[serde(default)]
        update_mask: Option<Vec<String>>,
        #[serde(default)]
        action_on_non_existence: OnMissing,
    },
    /// Deletes task instances: a task id (every instance in the path's run) or an entity.
    Delete {
        entities: Vec<DeleteEntity>,
        #[serde(default)]
        action_on_non_existence: OnMissing,
    },
}

/// Airflow's `BulkActionNotOnExistence`: what a missing task instance does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OnMissing {
    /// It is an error of the action.
    #[default]
    Fail,
    /// It is left out quietly.
    Skip,
}

/// Airflow's `BulkTaskInstanceBody`: which task instances (`dag_id` and
/// `dag_run_id` default to the path's) and, for an update, what to set.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BulkTaskInstanceBody {
    task_id: String,
    /// One instance of a mapped task; every instance of the task when absent.
    #[serde(default)]
    map_index: Option<i32>,
    #[serde(default)]
    dag_id: Option<String>,
    #[serde(default)]
    dag_run_id: Option<String>,
    #[serde(default)]
    new_state: Option<String>,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    include_upstream: bool,
    #[serde(default)]
    include_downstream: bool,
    #[serde(default)]
    include_future: bool,
    #[serde(default)]
    include_past: bool,
}

/// A delete entity: a task id, or a body naming the task instance.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum DeleteEntity {
    /// A task of the path's run, every instance of it.
    TaskId(String),
    /// A task instance by body.
    Body(BulkTaskInstanceBody),
}

/// Airflow's `BulkActionResponse`.
#[derive(Debug, Default, Serialize, ToSchema)]
pub(crate) struct BulkActionResponse {
    /// `dag_id.run_id.task_id[map_index]` of each task instance the action changed.
    success: Vec<String>,
    /// `{"error": …, "status_code": …}` for each entity that failed.
    #[schema(value_type = Vec<Object>)]
    errors: Vec<Value>,
}

/// Airflow's `BulkResponse`: one entry per kind of action the request had.
#[derive(Debug, Default, Serialize, ToSchema)]
pub(crate) struct BulkResponse {
    create: Option<BulkActionResponse>,
    update: Option<BulkActionResponse>,
    delete: Option<BulkActionResponse>,
}

/// Where an entity points: its DAG, run, task and map index (none: every instance).
struct Target {
    dag_id: String,
    run_id: String,
    task_id: String,
    map_index: Option<i32>,
}

/// `PATCH /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances`: bulk
/// update (mark) and delete of task instances, all in one transaction.
#[utoipa::path(patch, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances", operation_id = "bulk_task_instances", tag = "Task Instance", params(RunPath), request_body = TaskInstanceBulkBody, responses((status = 200, body = BulkResponse)))]
pub(crate) async fn bulk(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    ApiPath((dag_id, run_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<BulkBody>,
) -> Result<Json<BulkResponse>, ApiError> {
    let count: usize = body
        .actions
        .iter()
        .map(|action| match action {
            BulkAction::Create { entities, .. } => entities.len(),
            BulkAction::Update { entities, .. } => entities.len(),
            BulkAction::Delete { entities, .. } => entities.len(),
        })
        .sum();
    if count > MAX_ENTITIES {
        return Err(ApiError::BadRequest(format!(
            "a bulk request may name at most {MAX_ENTITIES} task instances, this one names {count}; split it"
        )));
    }
    let mut db = state.db().await?;
    let tx = db.transaction().await?;
    let mut response = BulkResponse::default();
    for action in &body.actions {
        match action {
            BulkAction::Create { .. } => {
                let results = response.create.get_or_insert_with(Default::default);
                results.errors.push(json!({
                    "error": "Task instances bulk create is not supported: the scheduler creates them when a run starts",
                    "status_code": 405,
                }));
            }
            BulkAction::Update { entities, update_mask, action_on_non_existence } => {
                let results = response.update.get_or_insert_with(Default::default);
                let mask = update_mask.clone().unwrap_or_default();
                for entity in entities {
                    let outcome = update_one(&tx, (&dag_id, &run_id), entity, &mask, *action_on_non_existence).await;
                    record(results, outcome)?;
                }
            }
            BulkAction::Delete { entities, action_on_non_existence } => {
                let results = response.delete.get_or_insert_with(Default::default);
                for entity in entities {
                    let outcome = if user.role < Role::Admin {
                        Err(ApiError::Forbidden(format!(
                            "deleting task instances needs the admin role; user `{}` is {}",
                            user.username, user.role
                        )))
                    } else {
                        delete_one(&tx, (&dag_id, &run_id), entity, *action_on_non_existence).await
                    };
                    record(results, outcome)?;
                }
            }
        }
    }
    tx.commit().await?;
    Ok(Json(response))
}

/// Adds an entity's outcome to its action's results; a database failure ends the request.
fn record(results: &mut BulkActionResponse, outcome: Result<Vec<String>, ApiError>) -> Result<(), ApiError> {
    match outcome {
        Ok(keys) => results.success.extend(keys),
        Err(error @ ApiError::Db(_)) => return Err(error),
        Err(error) => {
            let (status, detail) = error.status_and_detail();
            results.errors.push(json!({"error": detail, "status_code": status.as_u16()}));
        }
    }
    Ok(())
}

/// The DAG, run, task and map index an entity names, with the path's DAG and run as defaults.
fn target_of(
    (dag_id, run_id): (&str, &str),
    task_id: &str,
    entity: Option<&BulkTaskInstanceBody>,
) -> Result<Target, ApiError> {
    let dag_id = entity.and_then(|e| e.dag_id.clone()).unwrap_or_else(|| dag_id.to_string());
    let run_id = entity.and_then(|e| e.dag_run_id.clone()).unwrap_or_else(|| run_id.to_string());
    if dag_id == ALL || run_id == ALL {
        return Err(ApiError::BadRequest(format!(
            "task `{task_id}`: with `~` in the path, give `dag_id` and `dag_run_id` in the entity"
        )));
    }
    Ok(Target { dag_id, run_id, task_id: task_id.to_string(), map_index: entity.and_then(|e| e.map_index) })
}

/// The task instances a target names, an empty list when there are none and
/// `on_missing` is skip, or a 404.
async fn resolve(
    db: &impl GenericClient,
    target: &Target,
    on_missing: OnMissing,
) -> Result<(db::runs::DagRunRow, Vec<TaskInstanceRow>), ApiError> {
    let run = run_or_404(db, &target.dag_id, &target.run_id).await?;
    match mark::task_instances_of(db, &run, &target.task_id, target.map_index).await {
        Ok(tis) => Ok((run, tis)),
        Err(ApiError::NotFound(_)) if on_missing == OnMissing::Skip => Ok((run, Vec::new())),
        Err(error) => Err(error),
    }
}

/// `dag_id.run_id.task_id[map_index]`, Airflow's key of a task instance in a `BulkResponse`.
fn key(ti: &TaskInstanceRow) -> String {
    format!("{}.{}.{}[{}]", ti.dag_id, ti.run_id, ti.task_id, ti.map_index)
}

/// Marks one entity's task instances; answers the keys of those that moved.
async fn update_one(
    db: &impl GenericClient,
    path: (&str, &str),
    entity: &BulkTaskInstanceBody,
    update_mask: &[String],
    on_missing: OnMissing,
) -> Result<Vec<String>, ApiError> {
    let target = target_of(path, &entity.task_id, Some(entity))?;
    let body = PatchBody {
        new_state: entity.new_state.clone(),
        note: entity.note.clone(),
        include_upstream: entity.include_upstream,
        include_downstream: entity.include_downstream,
        include_future: entity.include_future,
        include_past: entity.include_past,
    };
    let request = mark::mark_request(update_mask, &body)?;
    let (run, tis) = resolve(db, &target, on_missing).await?;
    if tis.is_empty() {
        return Ok(Vec::new());
    }
    let moved = mark::mark_in(db, &run, &tis, &request, false).await?;
    Ok(moved.iter().map(key).collect())
}

/// Deletes one entity's task instances; answers their keys.
async fn delete_one(
    db: &impl GenericClient,
    path: (&str, &str),
    entity: &DeleteEntity,
    on_missing: OnMissing,
) -> Result<Vec<String>, ApiError> {
    let target = match entity {
        DeleteEntity::TaskId(task_id) => target_of(path, task_id, None)?,
        DeleteEntity::Body(body) => target_of(path, &body.task_id, Some(body))?,
    };
    let (run, tis) = resolve(db, &target, on_missing).await?;
    if tis.is_empty() {
        return Ok(Vec::new());
    }
    refuse_live_run(&run)?;
    let ids: Vec<uuid::Uuid> = tis.iter().map(|ti| ti.id).collect();
    let deleted: BTreeSet<uuid::Uuid> = removal::delete(db, &ids).await?.into_iter().collect();
    Ok(tis.iter().filter(|ti| deleted.contains(&ti.id)).map(key).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bulk_body_reads_airflows_three_actions() {
        let body: BulkBody = serde_json::from_value(json!({"actions": [
            {"action": "create", "entities": [{"task_id": "a"}]},
            {"action": "update", "entities": [{"task_id": "a", "map_index": 2, "new_state": "success"}],
             "update_mask": ["new_state"], "action_on_non_existence": "skip"},
            {"action": "delete", "entities": ["a", {"task_id": "b", "dag_run_id": "r2"}]},
        ]}))
        .unwrap();
        assert_eq!(body.actions.len(), 3);
        let BulkAction::Update { entities, action_on_non_existence, .. } = &body.actions[1] else { panic!() };
        assert_eq!((entities[0].map_index, *action_on_non_existence), (Some(2), OnMissing::Skip));
        let BulkAction::Delete { entities, .. } = &body.actions[2] else { panic!() };
        assert!(matches!(&entities[0], DeleteEntity::TaskId(id) if id == "a"));
        assert!(matches!(&entities[1], DeleteEntity::Body(b) if b.dag_run_id.as_deref() == Some("r2")));
    }

    #[test]
    fn a_wildcard_path_needs_the_dag_and_run_in_the_entity() {
        let error = target_of(("~", "~"), "a", None).err().unwrap().to_string();
        assert!(error.contains("`dag_id` and `dag_run_id`"), "{error}");
        let entity: BulkTaskInstanceBody =
            serde_json::from_value(json!({"task_id": "a", "dag_id": "etl", "dag_run_id": "r1"})).unwrap();
        let target = target_of(("~", "~"), "a", Some(&entity)).unwrap();
        assert_eq!((target.dag_id.as_str(), target.run_id.as_str(), target.map_index), ("etl", "r1", None));
    }
}
