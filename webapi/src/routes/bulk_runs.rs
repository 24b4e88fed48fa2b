//! `PATCH /api/v2/dags/{dag_id}/dagRuns`: Airflow's `bulk_dag_runs`, a
//! `BulkBody` of update (state and note, as `PATCH …/dagRuns/{dag_run_id}`)
//! and delete actions over many runs (`~` as the DAG id: each entity names its
//! DAG). Runs are not created this way (trigger them): a create action answers
//! a 405 error, as in Airflow.
//!
//! One transaction; each action in a savepoint of its own. An action whose
//! entities are missing (with `action_on_non_existence: fail`) or whose change
//! fails is undone whole and its `errors` say why; an entity that cannot be
//! resolved (no DAG id under `~`) or a run that cannot be deleted (a task
//! still queued or running) is an error of its own while the others go on.

use std::collections::HashSet;

use axum::{extract::State, http::StatusCode, Extension, Json};
use deadpool_postgres::Transaction;
use gust_shared::db::{self, runs::Deletion};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use super::{
    bulk::{bulk_body_schema, BulkAction, BulkActionResponse, BulkBody, BulkResponse, DeleteEntity, OnNonExistence},
    dag_runs::ALL_DAGS,
    dags::still_running,
    input_checks::{bounded_note, note_fits},
    path_params::DagPath,
    run_changes::{apply_run_patch, mutable_state},
};
use crate::{
    auth::{CurrentUser, Role},
    error::ApiError,
    extract::{ApiJson, ApiPath},
    AppState,
};

/// One run of a bulk request (Airflow's `BulkDAGRunBody`); also the entries of `clearDagRuns`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BulkDagRunBody {
    /// The run's id.
    pub(crate) dag_run_id: String,
    /// The run's DAG: required when the path's DAG id is `~`, else the path's (or absent).
    pub(crate) dag_id: Option<String>,
    /// For update: `queued`, `success` or `failed` (any other value is a 422, whatever the action).
    #[serde(default, deserialize_with = "settable_state")]
    #[schema(value_type = Option<String>, pattern = "^(queued|success|failed)$")]
    pub(crate) state: Option<String>,
    /// For update: the run's note, at most 1000 characters.
    #[serde(default, deserialize_with = "bounded_note")]
    #[schema(max_length = 1000)]
    pub(crate) note: Option<String>,
}

bulk_body_schema!(DagRunBulkBody, BulkDagRunBody);

/// A bulk entity's `state`, refused while the body is read when a run cannot be set to it.
fn settable_state<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let state = Option::<String>::deserialize(deserializer)?;
    match state.as_deref().map(|text| (text, mutable_state(text))) {
        Some((text, None)) => {
            Err(serde::de::Error::custom(format!("`state` must be queued, success or failed, got `{text}`")))
        }
        _ => Ok(state),
    }
}

/// A run named by a bulk entity: its DAG and run id.
type RunKey = (String, String);

/// `PATCH /api/v2/dags/{dag_id}/dagRuns`: sets the state and note of many runs
/// and deletes runs (see the module doc); answers Airflow's `BulkResponse`,
/// each success as `dag_id.dag_run_id`. Needs the operator role; delete
/// actions need the admin role, as deleting one run does.
#[utoipa::path(patch, path = "/api/v2/dags/{dag_id}/dagRuns", tag = "DagRun", params(DagPath), request_body = DagRunBulkBody, responses((status = 200, body = BulkResponse)))]
pub(crate) async fn bulk_dag_runs(
    State(state): State<AppState>,
    Extension(actor): Extension<CurrentUser>,
    ApiPath(dag_id): ApiPath<String>,
    ApiJson(body): ApiJson<BulkBody<BulkDagRunBody>>,
) -> Result<Json<BulkResponse>, ApiError> {
    let mut db = state.db().await?;
    let mut tx = db.transaction().await?;
    let mut response = BulkResponse::default();
    for action in body.actions {
        let slot = match &action {
            BulkAction::Create(_) => &mut response.create,
            BulkAction::Update(_) => &mut response.update,
            BulkAction::Delete(_) => &mut response.delete,
        }
        .get_or_insert_with(BulkActionResponse::default);
        let savepoint = tx.transaction().await?;
        let outcome = match action {
            BulkAction::Create(_) => Err(ApiError::with_status(
                StatusCode::METHOD_NOT_ALLOWED,
                "DAG runs cannot be created in bulk; trigger each with POST /api/v2/dags/{dag_id}/dagRuns",
            )),
            BulkAction::Update(update) => {
                let mask = update.update_mask.unwrap_or_default();
                update_runs(&savepoint, &dag_id, update.entities, &mask, update.action_on_non_existence, slot).await
            }
            BulkAction::Delete(_) if actor.role < Role::Admin => Err(ApiError::Forbidden(format!(
                "deleting DAG runs needs the admin role; user `{}` is {}",
                actor.username, actor.role
            ))),
            BulkAction::Delete(delete) => {
                delete_runs(&savepoint, &dag_id, delete.entities, delete.action_on_non_existence, slot).await
            }
        };
        match outcome {
            Ok(done) => {
                savepoint.commit().await?;
                slot.success.extend(done);
            }
            Err(error @ (ApiError::Db(_) | ApiError::Unavailable(_))) => return Err(error),
            Err(error) => {
                savepoint.rollback().await?;
                slot.errors.push(error_entry(error));
            }
        }
    }
    tx.commit().await?;
    tracing::info!(dag_id, ?response, "DAG runs changed in bulk through the API");
    Ok(Json(response))
}

/// Sets the state and note of the runs `entities` name; answers the keys done.
async fn update_runs(
    tx: &Transaction<'_>,
    path_dag_id: &str,
    entities: Vec<BulkDagRunBody>,
    update_mask: &[String],
    on_missing: OnNonExistence,
    slot: &mut BulkActionResponse,
) -> Result<Vec<String>, ApiError> {
    let mask = crate::extract::mask_fields(update_mask);
    if let Some(field) = mask.iter().find(|f| !matches!(**f, "state" | "note")) {
        return Err(ApiError::BadRequest(format!(
            "only `state` and `note` of a DAG run can be updated; update_mask names `{field}`"
        )));
    }
    let allowed = |field: &str| mask.is_empty() || mask.contains(&field);
    let mut wanted = Vec::new();
    for entity in entities {
        match run_key(path_dag_id, entity.dag_id.as_deref(), &entity.dag_run_id) {
            Ok(key) => wanted.push((key, entity)),
            Err(error) => slot.errors.push(error_entry(error)),
        }
    }
    let runs = locked_runs(tx, wanted.iter().map(|(key, _)| key), on_missing).await?;
    let mut done = Vec::new();
    for ((dag_id, run_id), entity) in wanted {
        let Some(run) = runs.iter().find(|run| run.dag_id == dag_id && run.run_id == run_id) else { continue };
        let state = match entity.state.filter(|_| allowed("state")) {
            None => None,
            Some(text) => Some(mutable_state(&text).ok_or_else(|| {
                ApiError::BadRequest(format!("`state` must be queued, success or failed, got `{text}`"))
            })?),
        };
        let note = entity.note.filter(|_| allowed("note"));
        note_fits(note.as_deref())?;
        apply_run_patch(tx, run, state, note.as_deref().map(Some)).await?;
        done.push(format!("{dag_id}.{run_id}"));
    }
    Ok(done)
}

/// Deletes the runs `entities` name; answers the keys done. A run with a task
/// still queued or running is an error entry of its own (409), as in Airflow.
async fn delete_runs(
    tx: &Transaction<'_>,
    path_dag_id: &str,
    entities: Vec<DeleteEntity<BulkDagRunBody>>,
    on_missing: OnNonExistence,
    slot: &mut BulkActionResponse,
) -> Result<Vec<String>, ApiError> {
    let mut wanted: Vec<RunKey> = Vec::new();
    for entity in entities {
        let key = match &entity {
            DeleteEntity::Key(run_id) if path_dag_id == ALL_DAGS => Err(ApiError::BadRequest(format!(
                "with `~` as the DAG id, name each run as an object with its dag_id, not as the string `{run_id}`"
            ))),
            DeleteEntity::Key(run_id) => run_key(path_dag_id, None, run_id),
            DeleteEntity::Entity(entity) => run_key(path_dag_id, entity.dag_id.as_deref(), &entity.dag_run_id),
        };
        match key {
            Ok(key) if !wanted.contains(&key) => wanted.push(key),
            Ok(_) => {}
            Err(error) => slot.errors.push(error_entry(error)),
        }
    }
    let runs = locked_runs(tx, wanted.iter(), on_missing).await?;
    let mut done = Vec::new();
    for run in runs {
        match db::runs::delete(tx, run.id).await? {
            Deletion::Deleted => done.push(format!("{}.{}", run.dag_id, run.run_id)),
            Deletion::NotFound => {}
            Deletion::Busy(tasks) => slot
                .errors
                .push(error_entry(still_running(&format!("DAG run `{}` of DAG `{}`", run.run_id, run.dag_id), &tasks))),
        }
    }
    Ok(done)
}

/// The run an entity names: the path's DAG unless it is `~`, when the entity must name one.
fn run_key(path_dag_id: &str, dag_id: Option<&str>, run_id: &str) -> Result<RunKey, ApiError> {
    match (path_dag_id, dag_id) {
        (ALL_DAGS, None | Some(ALL_DAGS)) => Err(ApiError::BadRequest(format!(
            "with `~` as the DAG id, give each run its `dag_id` (missing for dag_run_id `{run_id}`)"
        ))),
        (ALL_DAGS, Some(dag_id)) => Ok((dag_id.to_string(), run_id.to_string())),
        (path, Some(dag_id)) if dag_id != path => Err(ApiError::BadRequest(format!(
            "dag_id `{dag_id}` of dag_run_id `{run_id}` does not match the path's DAG id `{path}`"
        ))),
        (path, _) => Ok((path.to_string(), run_id.to_string())),
    }
}

/// The named runs that exist, locked, in the order named; a 404 naming the
/// missing ones when `on_missing` is `fail`.
async fn locked_runs<'k>(
    tx: &Transaction<'_>,
    keys: impl Iterator<Item = &'k RunKey>,
    on_missing: OnNonExistence,
) -> Result<Vec<db::runs::DagRunRow>, ApiError> {
    let mut runs = Vec::new();
    let mut missing = Vec::new();
    let mut seen = HashSet::new();
    for (dag_id, run_id) in keys {
        if !seen.insert((dag_id, run_id)) {
            continue;
        }
        let locked = match db::runs::get(tx, dag_id, run_id).await? {
            Some(run) => db::runs::lock(tx, run.id).await?,
            None => None,
        };
        match locked {
            Some(run) => runs.push(run),
            None => missing.push(format!("`{dag_id}.{run_id}`")),
        }
    }
    if on_missing == OnNonExistence::Fail && !missing.is_empty() {
        return Err(ApiError::NotFound(format!(
            "these DAG runs were not found: {}; send action_on_non_existence \"skip\" to pass over them",
            missing.join(", ")
        )));
    }
    Ok(runs)
}

/// Airflow's shape of one error of a bulk action.
fn error_entry(error: ApiError) -> Map<String, Value> {
    let (status, detail) = error.status_and_detail();
    let mut entry = Map::new();
    entry.insert("error".into(), json!(detail));
    entry.insert("status_code".into(), json!(status.as_u16()));
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entity_names_a_run_of_the_paths_dag_or_under_tilde_its_own() {
        assert_eq!(run_key("etl", None, "r1").unwrap(), ("etl".into(), "r1".into()));
        assert_eq!(run_key("etl", Some("etl"), "r1").unwrap(), ("etl".into(), "r1".into()));
        assert_eq!(run_key("~", Some("etl"), "r1").unwrap(), ("etl".into(), "r1".into()));
        assert!(run_key("~", None, "r1").unwrap_err().to_string().contains("r1"));
        assert!(run_key("~", Some("~"), "r1").is_err());
        assert!(run_key("etl", Some("other"), "r1").unwrap_err().to_string().contains("other"));
    }
}
