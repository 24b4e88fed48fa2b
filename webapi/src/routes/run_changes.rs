//! Changing one DAG run by hand: `PATCH …/dagRuns/{dag_run_id}` (state and
//! note, Airflow's `set_dag_run_state`), `DELETE …/dagRuns/{dag_run_id}` and
//! `POST …/dagRuns/{dag_run_id}/clear`.
//!
//! Each runs in one transaction that first locks the run (a scheduler holding
//! it is waited for; one arriving later skips it), and every state change is
//! a compare-and-set: task instances move only where the state machine
//! allows, the run only from the state it was read in. The NOTIFYs the shared
//! queries send wake the schedulers on commit.

use std::collections::HashMap;

use axum::{extract::State, http::StatusCode, Json};
use gust_shared::{
    db::{
        self,
        runs::{DagRunRow, Deletion},
        task_instances::{listing, listing::TaskInstanceRow, repair},
    },
    state::{RunState, TaskState, TaskTransition},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    clear::clears,
    dag_runs::{definition_of, run_or_404, version_for_display, DagRunResponse},
    dags::still_running,
    input_checks::note_fits,
    path_params::RunPath,
    task_instances::TaskInstanceCollection,
};
use crate::{
    error::ApiError,
    extract::{ApiJson, ApiPath, ApiQuery},
    AppState,
};

/// The states a run may be set to through the API (Airflow's `DagRunMutableStates`).
const MUTABLE_STATES: [RunState; 3] = [RunState::Queued, RunState::Success, RunState::Failed];

/// Body of `PATCH …/dagRuns/{dag_run_id}` (Airflow's `DAGRunPatchBody`); a
/// field left out is not changed, `"note": null` removes the note.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub(crate) struct DagRunPatchBody {
    /// `queued`, `success` or `failed`.
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<String>, pattern = "^(queued|success|failed)$")]
    state: Option<Option<String>>,
    /// Free text, at most 1000 characters; null removes the note.
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<String>, max_length = 1000)]
    note: Option<Option<String>>,
}

/// What a checked PATCH asks for.
#[derive(Debug, PartialEq)]
struct RunPatch {
    /// The new state, if the state is to change.
    state: Option<RunState>,
    /// The new note (`Some(None)` removes it), if the note is to change.
    note: Option<Option<String>>,
}

/// The fields of `body` that `update_mask` (repeated or comma-separated) lets through, checked.
fn run_patch(update_mask: &[String], body: DagRunPatchBody) -> Result<RunPatch, ApiError> {
    let mask = crate::extract::mask_fields(update_mask);
    if let Some(field) = mask.iter().find(|f| !matches!(**f, "state" | "note")) {
        return Err(ApiError::BadRequest(format!(
            "only `state` and `note` of a DAG run can be updated; update_mask names `{field}`"
        )));
    }
    if body.state.is_none() && body.note.is_none() {
        return Err(ApiError::BadRequest(
            "the body names nothing to change: give `state` (queued, success or failed) or `note`".into(),
        ));
    }
    let allowed = |field: &str| mask.is_empty() || mask.contains(&field);
    let note = body.note.filter(|_| allowed("note"));
    note_fits(note.as_ref().and_then(Option::as_deref))?;
    let state = match body.state.flatten().filter(|_| allowed("state")) {
        None => None,
        Some(text) => Some(mutable_state(&text).ok_or_else(|| {
            ApiError::invalid(
                ["body", "state"],
                "enum",
                format!("`state` must be queued, success or failed, got `{text}`"),
            )
        })?),
    };
    Ok(RunPatch { state, note })
}

/// The task instance states a run's new state moves, and where to, as
/// Airflow's `set_dag_run_state_to_success` / `_to_failed` do within what
/// gust's state machine allows. Success: every task instance that is not
/// finished, failed or upstream_failed becomes `success` (skipped and removed
/// ones stay, as they already count as success). Failed: running, queued and
/// up_for_retry and up_for_reschedule ones become `failed`, the ones that never started `skipped`.
fn task_moves(run_state: RunState) -> &'static [(TaskState, TaskTransition)] {
    use TaskState::*;
    use TaskTransition::{MarkFailed, MarkSkipped, MarkSuccess};
    match run_state {
        RunState::Success => &[
            (None, MarkSuccess),
            (Scheduled, MarkSuccess),
            (Queued, MarkSuccess),
            (Running, MarkSuccess),
            (UpForRetry, MarkSuccess),
            (UpForReschedule, MarkSuccess),
            (Failed, MarkSuccess),
            (UpstreamFailed, MarkSuccess),
        ],
        RunState::Failed => &[
            (Running, MarkFailed),
            (Queued, MarkFailed),
            (UpForRetry, MarkFailed),
            (UpForReschedule, MarkFailed),
            (None, MarkSkipped),
            (Scheduled, MarkSkipped),
        ],
        RunState::Queued | RunState::Running => &[],
    }
}

/// Moves the run's task instances as [`task_moves`] says for `run_state`
/// (compare-and-set per the state machine); returns how many moved.
async fn move_task_instances(db: &impl db::GenericClient, run_pk: i64, run_state: RunState) -> Result<u64, ApiError> {
    let moves = task_moves(run_state);
    if moves.is_empty() {
        return Ok(0);
    }
    let tis = listing::list_for_run(db, run_pk).await?;
    let mut by_transition: HashMap<TaskTransition, Vec<Uuid>> = HashMap::new();
    for ti in &tis {
        if let Some((_, transition)) = moves.iter().find(|(from, _)| *from == ti.state) {
            by_transition.entry(*transition).or_default().push(ti.id);
        }
    }
    let mut moved = 0;
    for (transition, ids) in by_transition {
        moved += repair::mark(db, &ids, transition).await?.len() as u64;
    }
    Ok(moved)
}

crate::extract::update_mask_param!(RunMask, ["state", "note"]);

/// Query of `PATCH …/dagRuns/{dag_run_id}`.
#[derive(Debug, Deserialize)]
pub(crate) struct PatchParams {
    /// Fields of the body to apply (`state`, `note`), repeated or comma-separated; all present fields when absent.
    #[serde(default)]
    update_mask: Vec<String>,
}

/// `PATCH /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}` with `{"state", "note"}`
/// and an optional `update_mask`: `success` or `failed` marks the run and its
/// task instances (see [`task_moves`]; a worker still running a task finishes
/// its process, and its result is then dropped), `queued` starts the run over
/// (its finished task instances keep their state: clear them to run them
/// again). Answers the run. Needs the operator role.
#[utoipa::path(patch, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}", tag = "DagRun", operation_id = "patch_dag_run", params(RunPath, RunMask), request_body = DagRunPatchBody, responses((status = 200, body = DagRunResponse), (status = 409, description = "The run changed meanwhile; try again")))]
pub(crate) async fn patch(
    State(state): State<AppState>,
    ApiPath((dag_id, run_id)): ApiPath<(String, String)>,
    ApiQuery(params): ApiQuery<PatchParams>,
    ApiJson(body): ApiJson<DagRunPatchBody>,
) -> Result<Json<DagRunResponse>, ApiError> {
    let patch = run_patch(&params.update_mask, body)?;
    let mut db = state.db().await?;
    let tx = db.transaction().await?;
    let run = locked_run(&tx, &dag_id, &run_id).await?;
    let moved = apply_run_patch(&tx, &run, patch.state, patch.note.as_ref().map(Option::as_deref)).await?;
    // The run as this request left it, read before a scheduler can move it on.
    let response = respond_with_run(&tx, &dag_id, &run_id).await?;
    tx.commit().await?;
    tracing::info!(dag_id, run_id, state = ?patch.state, moved, "DAG run changed through the API");
    Ok(response)
}

/// Sets the state of a run locked by this transaction ([`locked_run`]),
/// moving its task instances as [`task_moves`] says, and its note
/// (`Some(None)` removes it); answers how many task instances moved. 409 when
/// the run changed since it was locked. The single and the bulk PATCH share it.
pub(crate) async fn apply_run_patch(
    tx: &impl db::GenericClient,
    run: &DagRunRow,
    new_state: Option<RunState>,
    note: Option<Option<&str>>,
) -> Result<u64, ApiError> {
    let mut moved = 0;
    if let Some(new_state) = new_state {
        moved = move_task_instances(tx, run.id, new_state).await?;
        if run.state != new_state && db::runs::set_state(tx, run.id, run.state, new_state).await?.is_none() {
            return Err(ApiError::Conflict(format!(
                "DAG run `{}` of DAG `{}` changed meanwhile; try again",
                run.run_id, run.dag_id
            )));
        }
    }
    if let Some(note) = note {
        db::runs::set_note(tx, run.id, note).await?;
    }
    Ok(moved)
}

/// The state a run may be set to by hand, by its name: `queued`, `success` or `failed`.
pub(crate) fn mutable_state(text: &str) -> Option<RunState> {
    MUTABLE_STATES.into_iter().find(|s| s.as_str() == text)
}

/// `DELETE /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}`: deletes the run with
/// its task instances, their tries, logs and XComs; 204. 409 while one of its
/// task instances is queued or running (mark the run failed first). Needs the
/// admin role (gust's default for deletes; Airflow asks for the DAG-run delete permission).
#[utoipa::path(delete, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}", tag = "DagRun", operation_id = "delete_dag_run", params(RunPath), responses((status = 204, description = "Deleted"), (status = 409, description = "A task instance of the run is queued or running")))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    ApiPath((dag_id, run_id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let mut db = state.db().await?;
    let tx = db.transaction().await?;
    let run = run_or_404(&tx, &dag_id, &run_id).await?;
    match db::runs::delete(&tx, run.id).await? {
        Deletion::Deleted => {
            tx.commit().await?;
            tracing::info!(dag_id, run_id, "DAG run deleted through the API");
            Ok(StatusCode::NO_CONTENT)
        }
        Deletion::NotFound => Err(run_not_found(&dag_id, &run_id)),
        Deletion::Busy(tasks) => Err(still_running(&format!("DAG run `{run_id}` of DAG `{dag_id}`"), &tasks)),
    }
}

/// Body of `POST …/dagRuns/{dag_run_id}/clear` (Airflow's `DAGRunClearBody`;
/// `dry_run` defaults to true, as in Airflow).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DagRunClearBody {
    /// Only say which task instances a clear would reset (default true).
    #[serde(default = "yes")]
    #[schema(default = true)]
    dry_run: bool,
    /// Reset only failed and upstream_failed task instances.
    #[serde(default)]
    only_failed: bool,
    /// Accepted when the run already is on its DAG's latest version (gust pins runs to theirs).
    run_on_latest_version: Option<bool>,
    /// Not supported: must be false.
    #[serde(default)]
    #[schema(schema_with = crate::openapi::only_false)]
    only_new: bool,
    /// A note to set on the run.
    note: Option<String>,
}

/// What a clear answers: the run, or for a dry run the task instances it would reset
/// (Airflow's `ClearTaskInstanceCollectionResponse | DAGRunResponse`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum DagRunClearResponse {
    /// The task instances a clear would reset.
    WouldClear(TaskInstanceCollection),
    /// The run after the clear (boxed: it is much larger than a collection).
    Cleared(Box<DagRunResponse>),
}

/// The serde default of `dry_run`.
fn yes() -> bool {
    true
}

/// `POST /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/clear`: resets the run's
/// finished task instances (only the failed ones with `only_failed`) to no
/// status and queues the run again, as Airflow's DAG clear does; running ones
/// are left alone. A dry run (the default) answers the task instances it would
/// reset; a real one answers the run. Needs the operator role.
#[utoipa::path(post, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/clear", tag = "DagRun", operation_id = "clear_dag_run", params(RunPath), request_body = DagRunClearBody, responses((status = 200, body = DagRunClearResponse), (status = 409, description = "The run changed meanwhile; try again")))]
pub(crate) async fn clear(
    State(state): State<AppState>,
    ApiPath((dag_id, run_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<DagRunClearBody>,
) -> Result<Json<DagRunClearResponse>, ApiError> {
    let options =
        ClearOptions::checked(body.only_failed, body.only_new, body.run_on_latest_version, body.note.as_deref())?;
    let mut db = state.db().await?;
    let tx = db.transaction().await?;
    let run = locked_run(&tx, &dag_id, &run_id).await?;
    let picked = clear_locked_run(&tx, &run, &options, body.dry_run).await?;
    if body.dry_run {
        return Ok(Json(DagRunClearResponse::WouldClear(TaskInstanceCollection::of_run(picked, &run))));
    }
    // Read before the commit: the run as this request left it (queued), not as a scheduler
    // that starts it a moment later has it.
    let Json(run) = respond_with_run(&tx, &dag_id, &run_id).await?;
    tx.commit().await?;
    tracing::info!(dag_id, run_id, picked = picked.len(), "DAG run cleared through the API");
    Ok(Json(DagRunClearResponse::Cleared(Box::new(run))))
}

/// The options of a run clear, checked; the single and the bulk clear share them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClearOptions<'a> {
    /// Reset only failed and upstream_failed task instances.
    only_failed: bool,
    /// Asked to run on the DAG's latest version (accepted when the run already is).
    run_on_latest_version: Option<bool>,
    /// A note to set on each cleared run.
    note: Option<&'a str>,
}

impl<'a> ClearOptions<'a> {
    /// Checks the options of a clear body: `only_new` is not supported, the note is bounded.
    pub(crate) fn checked(
        only_failed: bool,
        only_new: bool,
        run_on_latest_version: Option<bool>,
        note: Option<&'a str>,
    ) -> Result<Self, ApiError> {
        if only_new {
            return Err(ApiError::invalid(
                ["body", "only_new"],
                "value_error",
                "`only_new` is not supported: gust pins a run to its DAG version, so there are no newly added tasks \
                 to queue; leave it out or false",
            ));
        }
        note_fits(note)?;
        Ok(Self { only_failed, run_on_latest_version, note })
    }
}

/// Clears one run locked by this transaction ([`locked_run`]): the task
/// instances a clear resets (finished ones; failed ones with `only_failed`)
/// and, unless `dry_run`, resets them, queues the run again and sets the
/// note. Answers the task instances picked.
pub(crate) async fn clear_locked_run(
    tx: &impl db::GenericClient,
    run: &DagRunRow,
    options: &ClearOptions<'_>,
    dry_run: bool,
) -> Result<Vec<TaskInstanceRow>, ApiError> {
    let (dag_id, run_id) = (&run.dag_id, &run.run_id);
    let version = definition_of(tx, run).await?;
    if options.run_on_latest_version == Some(true) {
        let latest = db::dags::get(tx, dag_id).await?.map(|dag| dag.latest_version_id);
        if latest.is_some_and(|latest| latest != run.dag_version_id) {
            return Err(ApiError::BadRequest(format!(
                "`run_on_latest_version` is not supported yet: run `{run_id}` stays on version {} of DAG `{dag_id}`; \
                 trigger a new run to use the latest version",
                version.version_number
            )));
        }
    }
    let picked: Vec<TaskInstanceRow> = listing::list_for_run(tx, run.id)
        .await?
        .into_iter()
        .filter(|ti| clears(ti.state, options.only_failed))
        .collect();
    if dry_run {
        return Ok(picked);
    }

    let retries_by_task: HashMap<&str, i32> = version
        .definition
        .tasks
        .iter()
        .map(|t| (t.task_id.as_str(), i32::try_from(t.retries).unwrap_or(i32::MAX)))
        .collect();
    let ids: Vec<Uuid> = picked.iter().map(|ti| ti.id).collect();
    let retries: Vec<i32> =
        picked.iter().map(|ti| retries_by_task.get(ti.task_id.as_str()).copied().unwrap_or(0)).collect();
    let cleared = repair::clear(tx, &ids, &retries).await?;
    let requeued = !cleared.is_empty();
    if requeued && run.state == RunState::Queued {
        // Already queued (held back, say): only wake the schedulers.
        db::runs::requeue(tx, run.id).await?;
    } else if requeued && db::runs::set_state(tx, run.id, run.state, RunState::Queued).await?.is_none() {
        return Err(ApiError::Conflict(format!("DAG run `{run_id}` of DAG `{dag_id}` changed meanwhile; try again")));
    }
    if let Some(note) = options.note {
        db::runs::set_note(tx, run.id, Some(note)).await?;
    }
    tracing::debug!(dag_id, run_id, cleared = cleared.len(), requeued, "DAG run cleared");
    Ok(picked)
}

/// Loads and locks a run (waiting for a scheduler that holds it) or answers 404.
pub(crate) async fn locked_run(db: &impl db::GenericClient, dag_id: &str, run_id: &str) -> Result<DagRunRow, ApiError> {
    let run = run_or_404(db, dag_id, run_id).await?;
    db::runs::lock(db, run.id).await?.ok_or_else(|| run_not_found(dag_id, run_id))
}

/// The 404 for a run that is gone.
fn run_not_found(dag_id: &str, run_id: &str) -> ApiError {
    ApiError::NotFound(format!("DAG run `{run_id}` of DAG `{dag_id}` not found"))
}

/// The run as it is now, in Airflow's shape.
pub(crate) async fn respond_with_run(
    db: &impl db::GenericClient,
    dag_id: &str,
    run_id: &str,
) -> Result<Json<DagRunResponse>, ApiError> {
    let run = run_or_404(db, dag_id, run_id).await?;
    let version = version_for_display(db, run.dag_version_id).await?;
    Ok(Json(DagRunResponse::new(run, version.as_ref())))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(value: serde_json::Value) -> DagRunPatchBody {
        serde_json::from_value(value).expect("a valid body")
    }

    #[test]
    fn a_patch_tells_a_null_note_from_a_missing_one() {
        let patch = run_patch(&[], body(json!({"note": null}))).unwrap();
        assert_eq!(patch, RunPatch { state: None, note: Some(None) });
        let patch = run_patch(&[], body(json!({"state": "failed"}))).unwrap();
        assert_eq!(patch, RunPatch { state: Some(RunState::Failed), note: None });
    }

    #[test]
    fn the_update_mask_picks_fields_and_names_unknown_ones() {
        let both = json!({"state": "success", "note": "done"});
        let patch = run_patch(&["note".into()], body(both.clone())).unwrap();
        assert_eq!(patch, RunPatch { state: None, note: Some(Some("done".into())) });
        let patch = run_patch(&["state,note".into()], body(both.clone())).unwrap();
        assert_eq!(patch.state, Some(RunState::Success));
        let error = run_patch(&["state".into(), "conf".into()], body(both)).unwrap_err().to_string();
        assert!(error.contains("`conf`"), "{error}");
    }

    #[test]
    fn an_empty_patch_a_long_note_and_unknown_states_or_fields_are_refused() {
        assert!(run_patch(&[], body(json!({}))).unwrap_err().to_string().contains("nothing to change"));
        let long = json!({"note": "x".repeat(crate::routes::input_checks::MAX_NOTE_LEN + 1)});
        assert!(run_patch(&[], body(long)).unwrap_err().to_string().contains("`note`"));
        let running = run_patch(&[], body(json!({"state": "running"}))).unwrap_err().to_string();
        assert!(running.contains("`running`") && running.contains("queued, success or failed"), "{running}");
        assert!(serde_json::from_value::<DagRunPatchBody>(json!({"state": 1})).is_err());
        assert!(serde_json::from_value::<DagRunPatchBody>(json!({"stat": "failed"})).is_err());
    }

    #[test]
    fn every_task_move_is_allowed_by_the_state_machine() {
        for run_state in [RunState::Success, RunState::Failed] {
            for (from, transition) in task_moves(run_state) {
                assert!(transition.moves(*from), "{run_state}: {from} by {transition:?}");
            }
        }
        assert!(task_moves(RunState::Queued).is_empty());
    }

    #[test]
    fn failing_a_run_fails_what_was_started_and_skips_what_was_not() {
        let target =
            |from: TaskState| task_moves(RunState::Failed).iter().find(|(f, _)| *f == from).map(|(_, t)| t.target());
        assert_eq!(target(TaskState::Running), Some(TaskState::Failed));
        assert_eq!(target(TaskState::None), Some(TaskState::Skipped));
        assert_eq!(target(TaskState::Success), None, "finished task instances keep their state");
    }

    #[test]
    fn a_clear_takes_finished_task_instances_and_with_only_failed_the_failed_ones() {
        assert!(clears(TaskState::Success, false) && clears(TaskState::UpForRetry, false));
        assert!(!clears(TaskState::Running, false) && !clears(TaskState::None, false));
        assert!(clears(TaskState::UpstreamFailed, true) && !clears(TaskState::Success, true));
        let defaults: DagRunClearBody = serde_json::from_value(json!({})).unwrap();
        assert!(defaults.dry_run && !defaults.only_failed, "Airflow's defaults");
    }
}
