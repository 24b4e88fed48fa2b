//! `PATCH …/taskInstances/{task_id}`, `…/{task_id}/{map_index}`,
//! `…/taskGroupInstances/{group_id}` and their `…/dry_run`s: set task
//! instances' state by hand (Airflow's "mark success / failed / skipped"),
//! optionally with their upstream or downstream tasks in the same run.
//!
//! A finished run keeps its state (as in Airflow); a live run is re-evaluated
//! by the scheduler, which the NOTIFY inside `task_instances::repair::mark` wakes.

use super::path_params::{MappedTaskInstancePath, TaskGroupPath, TaskInstancePath};
use std::collections::HashSet;
use utoipa::{IntoParams, ToSchema};

use axum::{extract::State, Json};
use gust_shared::{
    db::{
        self,
        task_instances::{listing, listing::TaskInstanceRow, repair},
    },
    state::{TaskState, TaskTransition},
};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    dag_runs::{definition_of, run_or_404},
    task_graph::{with_relatives, Include},
    task_instances::{ti_or_404, TaskInstanceCollection},
};
use crate::{
    error::ApiError,
    extract::{ApiJson, ApiPath, ApiQuery},
    AppState,
};

/// The states a task instance may be set to through the API (Airflow's allowed set).
const SETTABLE: [TaskState; 3] = [TaskState::Success, TaskState::Failed, TaskState::Skipped];

/// Body of the mark routes (Airflow's `PatchTaskInstanceBody`).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct PatchBody {
    #[schema(schema_with = settable_states, required = true)]
    pub(crate) new_state: Option<String>,
    #[schema(schema_with = crate::openapi::only_null)]
    pub(crate) note: Option<String>,
    #[serde(default)]
    pub(crate) include_upstream: bool,
    #[serde(default)]
    pub(crate) include_downstream: bool,
    #[serde(default)]
    #[schema(schema_with = crate::openapi::only_false)]
    pub(crate) include_future: bool,
    #[serde(default)]
    #[schema(schema_with = crate::openapi::only_false)]
    pub(crate) include_past: bool,
}

/// The states `new_state` may name, for the OpenAPI document.
fn settable_states() -> utoipa::openapi::schema::Object {
    crate::openapi::one_of_strings(SETTABLE.map(TaskState::as_str))
}

/// Query of the mark routes without a map index in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PatchParams {
    /// Which instance of a mapped task; every instance of the task when absent (as in Airflow).
    map_index: Option<i32>,
    /// Fields of the body to apply, repeated or comma-separated.
    #[serde(default)]
    #[param(ignore)]
    update_mask: Vec<String>,
}

/// Query of the mark routes with a map index (or a group) in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct MaskParams {
    /// Fields of the body to apply, repeated or comma-separated.
    #[serde(default)]
    #[param(ignore)]
    update_mask: Vec<String>,
}

crate::extract::update_mask_param!(MarkMask, ["new_state", "note"]);

/// A checked mark request.
#[derive(Debug, PartialEq)]
pub(crate) struct MarkRequest {
    new_state: TaskState,
    include: Include,
}

/// Which task instances of the run a mark starts from.
enum Chosen<'a> {
    /// One task: one instance when a map index is given, else all of them.
    Task { task_id: &'a str, map_index: Option<i32> },
    /// Every task whose id starts with `{group_id}.`.
    Group(&'a str),
}

/// `PATCH …/taskInstances/{task_id}?map_index`: sets the state of the task's
/// instance (of every instance of a mapped task without `map_index`); answers
/// the task instances that changed.
#[utoipa::path(patch, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}", operation_id = "patch_task_instance", tag = "Task Instance", params(TaskInstancePath, PatchParams, MarkMask), request_body = PatchBody, responses((status = 200, description = "The task instances whose state changed", body = TaskInstanceCollection), (status = 409, description = "The task instance cannot move from its state to the one asked for")))]
pub(crate) async fn patch(
    State(state): State<AppState>,
    ApiPath((dag_id, run_id, task_id)): ApiPath<(String, String, String)>,
    ApiQuery(params): ApiQuery<PatchParams>,
    ApiJson(body): ApiJson<PatchBody>,
) -> Result<Json<TaskInstanceCollection>, ApiError> {
    let chosen = Chosen::Task { task_id: &task_id, map_index: params.map_index };
    mark(&state, (&dag_id, &run_id), chosen, &params.update_mask, &body, false).await
}

/// `PATCH …/taskInstances/{task_id}/dry_run?map_index`: the task instances a mark would change, unchanged.
#[utoipa::path(patch, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/dry_run", operation_id = "patch_task_instance_dry_run", tag = "Task Instance", params(TaskInstancePath, PatchParams, MarkMask), request_body = PatchBody, responses((status = 200, description = "The task instances the mark would change", body = TaskInstanceCollection), (status = 409, description = "The task instance cannot move from its state to the one asked for")))]
pub(crate) async fn dry_run(
    State(state): State<AppState>,
    ApiPath((dag_id, run_id, task_id)): ApiPath<(String, String, String)>,
    ApiQuery(params): ApiQuery<PatchParams>,
    ApiJson(body): ApiJson<PatchBody>,
) -> Result<Json<TaskInstanceCollection>, ApiError> {
    let chosen = Chosen::Task { task_id: &task_id, map_index: params.map_index };
    mark(&state, (&dag_id, &run_id), chosen, &params.update_mask, &body, true).await
}

/// `PATCH …/taskInstances/{task_id}/{map_index}`: sets the state of one instance of a mapped task.
#[utoipa::path(patch, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}", operation_id = "patch_task_instance_by_map_index", tag = "Task Instance", params(MappedTaskInstancePath, MaskParams, MarkMask), request_body = PatchBody, responses((status = 200, description = "The task instances whose state changed", body = TaskInstanceCollection), (status = 409, description = "The task instance cannot move from its state to the one asked for")))]
pub(crate) async fn patch_by_map_index(
    State(state): State<AppState>,
    ApiPath((dag_id, run_id, task_id, map_index)): ApiPath<(String, String, String, i32)>,
    ApiQuery(params): ApiQuery<MaskParams>,
    ApiJson(body): ApiJson<PatchBody>,
) -> Result<Json<TaskInstanceCollection>, ApiError> {
    let chosen = Chosen::Task { task_id: &task_id, map_index: Some(map_index) };
    mark(&state, (&dag_id, &run_id), chosen, &params.update_mask, &body, false).await
}

/// `PATCH …/taskInstances/{task_id}/{map_index}/dry_run`: what marking one instance of a mapped task would change.
#[utoipa::path(patch, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}/dry_run", operation_id = "patch_task_instance_dry_run_by_map_index", tag = "Task Instance", params(MappedTaskInstancePath, MaskParams, MarkMask), request_body = PatchBody, responses((status = 200, description = "The task instances the mark would change", body = TaskInstanceCollection), (status = 409, description = "The task instance cannot move from its state to the one asked for")))]
pub(crate) async fn dry_run_by_map_index(
    State(state): State<AppState>,
    ApiPath((dag_id, run_id, task_id, map_index)): ApiPath<(String, String, String, i32)>,
    ApiQuery(params): ApiQuery<MaskParams>,
    ApiJson(body): ApiJson<PatchBody>,
) -> Result<Json<TaskInstanceCollection>, ApiError> {
    let chosen = Chosen::Task { task_id: &task_id, map_index: Some(map_index) };
    mark(&state, (&dag_id, &run_id), chosen, &params.update_mask, &body, true).await
}

/// `PATCH …/taskGroupInstances/{group_id}`: sets the state of every task
/// instance of the group (the tasks whose ids start with `{group_id}.`).
#[utoipa::path(patch, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskGroupInstances/{group_id}", operation_id = "patch_task_group_instances", tag = "Task Instance", params(TaskGroupPath, MaskParams, MarkMask), request_body = PatchBody, responses((status = 200, description = "The task instances whose state changed", body = TaskInstanceCollection), (status = 409, description = "No task instance of the group can move to the state asked for")))]
pub(crate) async fn patch_group(
    State(state): State<AppState>,
    ApiPath((dag_id, run_id, group_id)): ApiPath<(String, String, String)>,
    ApiQuery(params): ApiQuery<MaskParams>,
    ApiJson(body): ApiJson<PatchBody>,
) -> Result<Json<TaskInstanceCollection>, ApiError> {
    mark(&state, (&dag_id, &run_id), Chosen::Group(&group_id), &params.update_mask, &body, false).await
}

/// `PATCH …/taskGroupInstances/{group_id}/dry_run`: what marking the group's task instances would change.
#[utoipa::path(patch, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskGroupInstances/{group_id}/dry_run", operation_id = "patch_task_group_instances_dry_run", tag = "Task Instance", params(TaskGroupPath, MaskParams, MarkMask), request_body = PatchBody, responses((status = 200, description = "The task instances the mark would change", body = TaskInstanceCollection), (status = 409, description = "No task instance of the group can move to the state asked for")))]
pub(crate) async fn dry_run_group(
    State(state): State<AppState>,
    ApiPath((dag_id, run_id, group_id)): ApiPath<(String, String, String)>,
    ApiQuery(params): ApiQuery<MaskParams>,
    ApiJson(body): ApiJson<PatchBody>,
) -> Result<Json<TaskInstanceCollection>, ApiError> {
    mark(&state, (&dag_id, &run_id), Chosen::Group(&group_id), &params.update_mask, &body, true).await
}

/// Marks the chosen task instances and the relatives asked for in one
/// transaction (or, for a dry run, only works out which would move).
async fn mark(
    state: &AppState,
    (dag_id, run_id): (&str, &str),
    chosen: Chosen<'_>,
    update_mask: &[String],
    body: &PatchBody,
    dry_run: bool,
) -> Result<Json<TaskInstanceCollection>, ApiError> {
    let request = mark_request(update_mask, body)?;
    let mut db = state.db().await?;
    let tx = db.transaction().await?;
    let run = run_or_404(&tx, dag_id, run_id).await?;
    let tis = match chosen {
        Chosen::Task { task_id, map_index } => task_instances_of(&tx, &run, task_id, map_index).await?,
        Chosen::Group(group_id) => group_instances(&tx, &run, group_id).await?,
    };
    let after = mark_in(&tx, &run, &tis, &request, dry_run).await?;
    if !dry_run {
        tx.commit().await?;
        tracing::info!(dag_id, run_id, new_state = %request.new_state, marked = after.len(), "task instances marked through the API");
    }
    Ok(Json(TaskInstanceCollection::of_run(after, &run)))
}

/// The instances of `task_id` in `run`: the one with `map_index`, or all of
/// them when it is `None`; a 404 naming what is missing when there are none.
pub(crate) async fn task_instances_of(
    db: &impl db::GenericClient,
    run: &db::runs::DagRunRow,
    task_id: &str,
    map_index: Option<i32>,
) -> Result<Vec<TaskInstanceRow>, ApiError> {
    match map_index {
        Some(index) => Ok(vec![ti_or_404(db, &run.dag_id, &run.run_id, task_id, index).await?]),
        None => {
            let all = listing::list_for_task(db, run.id, task_id).await?;
            if all.is_empty() {
                return Err(ApiError::NotFound(format!(
                    "task instance `{task_id}` not found in DAG run `{}` of DAG `{}`",
                    run.run_id, run.dag_id
                )));
            }
            Ok(all)
        }
    }
}

/// The task instances of `run` whose task ids start with `{group_id}.`
/// (Airflow's ids of tasks in a task group); a 404 when there are none.
async fn group_instances(
    db: &impl db::GenericClient,
    run: &db::runs::DagRunRow,
    group_id: &str,
) -> Result<Vec<TaskInstanceRow>, ApiError> {
    let prefix = format!("{group_id}.");
    let tis: Vec<TaskInstanceRow> =
        listing::list_for_run(db, run.id).await?.into_iter().filter(|ti| ti.task_id.starts_with(&prefix)).collect();
    if tis.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no task of DAG run `{}` of DAG `{}` is in task group `{group_id}`: gust has no task group objects, \
             so a group's tasks are those whose ids start with `{prefix}`",
            run.run_id, run.dag_id
        )));
    }
    Ok(tis)
}

/// Marks `tis` (task instances of `run`) and the relatives `request` asks for,
/// inside the caller's transaction, or with `dry_run` only works out which
/// would move; answers the task instances that moved (or would), as they are
/// then. A 409 when none of `tis` can move.
pub(crate) async fn mark_in(
    db: &impl db::GenericClient,
    run: &db::runs::DagRunRow,
    tis: &[TaskInstanceRow],
    request: &MarkRequest,
    dry_run: bool,
) -> Result<Vec<TaskInstanceRow>, ApiError> {
    let new_state = request.new_state;
    let transition = mark_transition(new_state)?;
    let chosen_ids: Vec<Uuid> = tis.iter().map(|ti| ti.id).collect();
    let relatives = relatives_of(db, tis, run, request.include).await?;
    let mut changed: HashSet<Uuid> = HashSet::new();
    if dry_run {
        changed.extend(tis.iter().filter(|ti| transition.moves(ti.state)).map(|ti| ti.id));
    } else {
        changed.extend(repair::mark(db, &chosen_ids, transition).await?);
    }
    if changed.is_empty() {
        let now: Vec<TaskInstanceRow> = if dry_run {
            tis.to_vec()
        } else {
            listing::list_for_run(db, run.id).await?.into_iter().filter(|t| chosen_ids.contains(&t.id)).collect()
        };
        return Err(ApiError::Conflict(none_moved(tis, &now, new_state)));
    }
    if dry_run {
        changed.extend(relatives.iter().filter(|r| transition.moves(r.state)).map(|r| r.id));
    } else {
        let relatives: Vec<Uuid> = relatives.iter().map(|r| r.id).collect();
        changed.extend(repair::mark(db, &relatives, transition).await?);
    }
    Ok(listing::list_for_run(db, run.id).await?.into_iter().filter(|t| changed.contains(&t.id)).collect())
}

/// Why none of `tis` (now `now`) could become `next`.
fn none_moved(tis: &[TaskInstanceRow], now: &[TaskInstanceRow], next: TaskState) -> String {
    match tis {
        [ti] => {
            let current = now.first().map_or(ti.state, |now| now.state);
            transition_conflict(ti, current, next)
        }
        _ => {
            let from = TaskTransition::mark(next).map_or(&[][..], TaskTransition::from);
            format!(
                "none of the {} task instances can become `{next}`: only a task instance that is {} can",
                tis.len(),
                quoted_or(from)
            )
        }
    }
}

/// The other task instances of the run whose tasks are upstream or downstream
/// of the tasks of `tis`, as `include` asks (none when it asks for neither).
async fn relatives_of(
    db: &impl db::GenericClient,
    tis: &[TaskInstanceRow],
    run: &db::runs::DagRunRow,
    include: Include,
) -> Result<Vec<TaskInstanceRow>, ApiError> {
    if !include.upstream && !include.downstream {
        return Ok(Vec::new());
    }
    let version = definition_of(db, run).await?;
    let chosen: Vec<&str> = tis.iter().map(|ti| ti.task_id.as_str()).collect();
    let tasks: HashSet<String> = with_relatives(&version.definition.tasks, &chosen, include).into_iter().collect();
    let ids: HashSet<Uuid> = tis.iter().map(|ti| ti.id).collect();
    let all = listing::list_for_run(db, run.id).await?;
    Ok(all.into_iter().filter(|other| !ids.contains(&other.id) && tasks.contains(&other.task_id)).collect())
}

/// Checks the update mask and body: the new state, the relatives, and what gust cannot do yet.
pub(crate) fn mark_request(update_mask: &[String], body: &PatchBody) -> Result<MarkRequest, ApiError> {
    let mask = Some(crate::extract::mask_fields(update_mask)).filter(|fields| !fields.is_empty());
    if let Some(fields) = &mask {
        if let Some(field) = fields.iter().find(|f| !matches!(**f, "new_state" | "note")) {
            return Err(ApiError::BadRequest(format!(
                "only `new_state` can be updated on a task instance; update_mask names `{field}`"
            )));
        }
    }
    let note_applies = mask.as_ref().is_none_or(|fields| fields.contains(&"note"));
    if note_applies && body.note.is_some() {
        return Err(ApiError::BadRequest(
            "gust does not store notes on task instances yet; leave `note` out (or null)".into(),
        ));
    }
    if body.include_future || body.include_past {
        return Err(ApiError::BadRequest(
            "`include_future` and `include_past` (the same task in other runs) are not supported yet; \
             mark each run's task instance on its own"
                .into(),
        ));
    }
    Ok(MarkRequest {
        new_state: new_state_of(body.new_state.as_deref())?,
        include: Include { upstream: body.include_upstream, downstream: body.include_downstream },
    })
}

/// The requested state, if it is one a task instance may be set to by hand.
fn new_state_of(new_state: Option<&str>) -> Result<TaskState, ApiError> {
    let allowed = quoted_or(&SETTABLE);
    let Some(text) = new_state else {
        return Err(ApiError::BadRequest(format!("`new_state` is required: {allowed}")));
    };
    SETTABLE
        .into_iter()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| ApiError::BadRequest(format!("`new_state` must be {allowed}, got `{text}`")))
}

/// The transition that marks a task instance `state` by hand.
fn mark_transition(state: TaskState) -> Result<TaskTransition, ApiError> {
    TaskTransition::mark(state)
        .ok_or_else(|| ApiError::BadRequest(format!("`new_state` must be {}, got `{state}`", quoted_or(&SETTABLE))))
}

/// Why `ti`, now `current`, cannot move to `next`, with what would allow it.
fn transition_conflict(ti: &TaskInstanceRow, current: TaskState, next: TaskState) -> String {
    let mapped = if ti.map_index == -1 { String::new() } else { format!(" (map_index {})", ti.map_index) };
    let why = if current == next {
        "it already is".to_string()
    } else {
        let from = TaskTransition::mark(next).map_or(&[][..], TaskTransition::from);
        format!("only a task instance that is {} can", quoted_or(from))
    };
    format!("task instance `{}`{mapped} is `{current}`; it cannot become `{next}`: {why}", ti.task_id)
}

/// `` `a`, `b` or `c` ``.
fn quoted_or(states: &[TaskState]) -> String {
    let quoted: Vec<String> = states.iter().map(|s| format!("`{s}`")).collect();
    match quoted.split_last() {
        None => "nothing".into(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(value: serde_json::Value) -> PatchBody {
        serde_json::from_value(value).expect("a valid body")
    }

    #[test]
    fn the_settable_states_are_exactly_those_the_state_machine_can_mark() {
        let markable: Vec<TaskState> =
            gust_shared::state::ALL_TASK_STATES.into_iter().filter(|s| TaskTransition::mark(*s).is_some()).collect();
        assert_eq!(markable, SETTABLE);
    }

    #[test]
    fn success_failed_and_skipped_are_the_only_settable_states() {
        assert_eq!(new_state_of(Some("success")).unwrap(), TaskState::Success);
        assert_eq!(new_state_of(Some("failed")).unwrap(), TaskState::Failed);
        assert_eq!(new_state_of(Some("skipped")).unwrap(), TaskState::Skipped);
        for bad in ["running", "queued", "none", "up_for_retry", "SUCCESS", ""] {
            let error = new_state_of(Some(bad)).unwrap_err().to_string();
            assert!(matches!(new_state_of(Some(bad)), Err(ApiError::BadRequest(_))), "{bad}");
            assert!(error.contains("`success`, `failed` or `skipped`"), "{bad}: {error}");
        }
    }

    #[test]
    fn a_missing_new_state_is_a_bad_request_naming_the_allowed_values() {
        let error = new_state_of(None).unwrap_err().to_string();
        assert!(error.contains("required") && error.contains("`skipped`"), "{error}");
    }

    #[test]
    fn the_body_names_the_state_and_the_relatives() {
        let request =
            mark_request(&[], &body(json!({"new_state": "failed", "include_downstream": true, "note": null}))).unwrap();
        assert_eq!(
            request,
            MarkRequest { new_state: TaskState::Failed, include: Include { upstream: false, downstream: true } }
        );
    }

    #[test]
    fn notes_other_runs_and_other_fields_are_refused_with_a_reason() {
        let note = mark_request(&[], &body(json!({"new_state": "success", "note": "by hand"})));
        assert!(note.unwrap_err().to_string().contains("note"));
        let past = mark_request(&[], &body(json!({"new_state": "success", "include_past": true})));
        assert!(past.unwrap_err().to_string().contains("include_past"));
        let mask = PatchParams { map_index: None, update_mask: vec!["new_state".into(), "pool".into()] };
        assert!(mark_request(&mask.update_mask, &body(json!({"new_state": "success"})))
            .unwrap_err()
            .to_string()
            .contains("pool"));
    }

    #[test]
    fn a_note_outside_the_update_mask_is_ignored_as_airflow_does() {
        let mask = PatchParams { map_index: None, update_mask: vec!["new_state".into()] };
        assert!(mark_request(&mask.update_mask, &body(json!({"new_state": "success", "note": "x"}))).is_ok());
    }

    #[test]
    fn a_forbidden_transition_says_where_the_task_is_and_what_would_allow_it() {
        let ti = TaskInstanceRow {
            id: Uuid::nil(),
            run_pk: 1,
            dag_id: "etl".into(),
            run_id: "r1".into(),
            task_id: "a".into(),
            map_index: -1,
            operator: "noop".into(),
            queue: "default".into(),
            state: TaskState::Running,
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
        };
        assert_eq!(
            transition_conflict(&ti, TaskState::Running, TaskState::Skipped),
            "task instance `a` is `running`; it cannot become `skipped`: only a task instance that is `none` or \
             `scheduled` can"
        );
        let again = transition_conflict(&ti, TaskState::Success, TaskState::Success);
        assert!(again.starts_with("task instance `a` is `success`; it cannot become `success`"), "{again}");
        let mapped =
            transition_conflict(&TaskInstanceRow { map_index: 2, ..ti }, TaskState::Running, TaskState::Skipped);
        assert!(mapped.contains("(map_index 2)"), "{mapped}");
    }
}
