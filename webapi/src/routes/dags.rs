//! `/api/v2/dags`: list DAGs, read one, pause or unpause one or many, delete its metadata.

use std::path::Path;

use axum::{extract::State, http::StatusCode, Extension, Json};
use chrono::{DateTime, Utc};
use gust_shared::{
    dag::DataInterval,
    db::{
        self,
        dags::{DagFilter, DagRow},
        filters::TextMatch,
        runs::{BusyTask, Deletion},
        GenericClient,
    },
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{
    list_query::{string_choice, Filters, QueryPairs},
    pagination::{order_by_param, OrderParams, PageParams},
    path_params::DagPath,
};
use crate::{
    auth::CurrentUser,
    error::ApiError,
    extract::{update_mask_param, ApiJson, ApiPath, ApiQuery, ANY_JSON},
    AppState,
};

/// Airflow's `DAGResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DagResponse {
    dag_id: String,
    dag_display_name: String,
    is_paused: bool,
    is_stale: bool,
    fileloc: String,
    file_token: String,
    relative_fileloc: Option<String>,
    owners: Vec<String>,
    tags: Vec<DagTagResponse>,
    description: Option<String>,
    max_active_tasks: i32,
    max_active_runs: i32,
    max_consecutive_failed_dag_runs: i32,
    has_import_errors: bool,
    has_task_concurrency_limits: bool,
    is_backfillable: bool,
    timetable_partitioned: bool,
    timetable_periodic: bool,
    timetable_summary: Option<String>,
    timetable_description: Option<String>,
    last_parsed_time: DateTime<Utc>,
    last_parse_duration: Option<f64>,
    last_expired: Option<DateTime<Utc>>,
    next_dagrun_logical_date: Option<DateTime<Utc>>,
    next_dagrun_data_interval_start: Option<DateTime<Utc>>,
    next_dagrun_data_interval_end: Option<DateTime<Utc>>,
    next_dagrun_run_after: Option<DateTime<Utc>>,
    /// The run types that may be created; null allows every type, as Airflow's default.
    #[schema(value_type = Option<Vec<String>>)]
    allowed_run_types: Option<Vec<&'static str>>,
    bundle_name: &'static str,
    bundle_version: Option<String>,
}

/// Airflow's `DagTagResponse`.
#[derive(Debug, Serialize, ToSchema)]
struct DagTagResponse {
    name: String,
    dag_id: String,
    dag_display_name: String,
}

/// Airflow's `DAGCollectionResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DagCollection {
    dags: Vec<DagResponse>,
    total_entries: i64,
}

/// The only DAG bundle gust has: the scheduler's DAG folder.
pub(crate) const BUNDLE_NAME: &str = "dags-folder";

impl DagResponse {
    /// The API shape of a stored DAG whose next scheduled run covers `next` (`None` when it has none).
    pub(crate) fn new(dag: DagRow, next: Option<DataInterval>) -> Self {
        let periodic = dag.schedule.as_deref().is_some_and(|s| s != gust_shared::dag::ASSET_TIMETABLE_SUMMARY);
        Self {
            dag_display_name: dag.dag_id.clone(),
            is_paused: dag.is_paused,
            is_stale: !dag.is_active,
            file_token: hex::encode(dag.fileloc.as_bytes()),
            relative_fileloc: Path::new(&dag.fileloc).file_name().map(|name| name.to_string_lossy().into_owned()),
            owners: dag.owners,
            tags: dag
                .tags
                .into_iter()
                .map(|name| DagTagResponse { name, dag_id: dag.dag_id.clone(), dag_display_name: dag.dag_id.clone() })
                .collect(),
            description: dag.description,
            max_active_tasks: dag.max_active_tasks,
            max_active_runs: dag.max_active_runs,
            max_consecutive_failed_dag_runs: 0,
            has_import_errors: false,
            has_task_concurrency_limits: false,
            is_backfillable: periodic,
            timetable_partitioned: false,
            timetable_periodic: periodic,
            timetable_description: Some(timetable_description(dag.schedule.as_deref())),
            timetable_summary: dag.schedule,
            last_parsed_time: dag.last_parsed_at,
            last_parse_duration: None,
            last_expired: None,
            next_dagrun_logical_date: next.map(|i| i.start),
            next_dagrun_data_interval_start: next.map(|i| i.start),
            next_dagrun_data_interval_end: next.map(|i| i.end),
            next_dagrun_run_after: next.map(|i| i.end),
            allowed_run_types: None,
            bundle_name: BUNDLE_NAME,
            bundle_version: None,
            fileloc: dag.fileloc,
            dag_id: dag.dag_id,
        }
    }
}

/// The API shapes of `dags`, each with the next run the scheduler will create for it
/// (computed from its schedule as the scheduler does).
pub(crate) async fn dag_responses(db: &impl GenericClient, dags: Vec<DagRow>) -> Result<Vec<DagResponse>, ApiError> {
    let ids: Vec<String> = dags.iter().filter(|d| d.schedule.is_some()).map(|d| d.dag_id.clone()).collect();
    let states = if ids.is_empty() { Default::default() } else { db::dags::schedule_states(db, &ids).await? };
    let now = Utc::now();
    Ok(dags
        .into_iter()
        .map(|dag| {
            let next = states.get(&dag.dag_id).and_then(|state| {
                let definition = &state.definition;
                let schedule = definition.schedule.as_ref()?;
                schedule.next_run(&definition.schedule_bounds(), now, state.last_logical_date, definition.catchup)
            });
            DagResponse::new(dag, next)
        })
        .collect())
}

/// The API shape of one stored DAG, with its next run.
pub(crate) async fn dag_response(db: &impl GenericClient, dag: DagRow) -> Result<DagResponse, ApiError> {
    Ok(dag_responses(db, vec![dag]).await?.pop().expect("one DAG in, one out"))
}

/// A person-readable description of a schedule, as Airflow shows it.
pub(crate) fn timetable_description(schedule: Option<&str>) -> String {
    match schedule {
        None => "Never, external triggers only".into(),
        Some("@hourly") => "At the start of every hour".into(),
        Some("@daily" | "@midnight") => "At 00:00".into(),
        Some("@weekly") => "At 00:00, only on Sunday".into(),
        Some("@monthly") => "At 00:00, on day 1 of the month".into(),
        Some("@yearly" | "@annually") => "At 00:00, on day 1 of January".into(),
        Some("@once") => "Once, as soon as possible".into(),
        Some(gust_shared::dag::ASSET_TIMETABLE_SUMMARY) => "Triggered by assets".into(),
        Some(every) if every.starts_with("every ") => every.into(),
        Some(cron) => format!("cron: {cron}"),
    }
}

/// Airflow's `GET /dags` filters gust cannot apply yet: given, they are a 400, never silently ignored.
const UNSUPPORTED_FILTERS: &[&str] = &[
    "has_import_errors",
    "last_dag_run_state",
    "bundle_name",
    "bundle_version",
    "has_asset_schedule",
    "asset_dependency",
    "dag_run_start_date_gte",
    "dag_run_start_date_gt",
    "dag_run_start_date_lte",
    "dag_run_start_date_lt",
    "dag_run_end_date_gte",
    "dag_run_end_date_gt",
    "dag_run_end_date_lte",
    "dag_run_end_date_lt",
    "dag_run_state",
    "timetable_type",
];

/// The filters of `GET /dags`, for the OpenAPI document only: the handler
/// reads them from the raw query ([`dag_filter_of`]) so that every bad value is
/// a 400 naming its parameter. Lists are repeated keys.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // never constructed: it exists for its `IntoParams` impl
pub(crate) struct DagFilters {
    /// Case-insensitive substring of the DAG id; `|` separates alternatives, `%` and `_` match themselves.
    dag_id_pattern: Option<String>,
    /// Case-sensitive prefix of the DAG id; `|` separates alternatives.
    dag_id_prefix_pattern: Option<String>,
    /// As `dag_id_pattern` (gust shows the DAG id as the display name).
    dag_display_name_pattern: Option<String>,
    /// As `dag_id_prefix_pattern`.
    dag_display_name_prefix_pattern: Option<String>,
    /// Only paused (true) or unpaused (false) DAGs.
    paused: Option<bool>,
    /// Leave out DAGs whose file is gone (default true).
    exclude_stale: Option<bool>,
    /// DAGs with any (or, with `tags_match_mode=all`, all) of these tags.
    tags: Vec<String>,
    /// `any` (default) or `all`.
    #[param(inline)]
    tags_match_mode: Option<TagsMatchMode>,
    /// DAGs with any of these owners.
    owners: Vec<String>,
    /// Only the DAGs the caller marked as favorite (true) or did not (false).
    is_favorite: Option<bool>,
}

string_choice!(TagsMatchMode, ["any", "all"]);

/// The filters of `GET /dags`, checked: `dag_id_pattern`, `dag_display_name_pattern`
/// (and their `_prefix_pattern` forms), `paused`, `exclude_stale` (default true),
/// `tags` with `tags_match_mode` (`any`, the default, or `all`), `owners`, and
/// `is_favorite` (of `user`).
fn dag_filter_of(query: &QueryPairs, user: &str) -> Result<DagFilter, ApiError> {
    query.refuse(UNSUPPORTED_FILTERS)?;
    let all_tags = match query.last("tags_match_mode") {
        None | Some("any") => false,
        Some("all") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                ["query", "tags_match_mode"],
                "literal_error",
                format!("`tags_match_mode` must be `any` or `all`, got `{other}`"),
            ))
        }
    };
    let mut dag_id_matches = query.text_matches("dag_id");
    // gust shows the DAG id as the display name.
    dag_id_matches.extend(query.text_matches("dag_display_name"));
    Ok(DagFilter {
        only_active: query.bool("exclude_stale")?.unwrap_or(true),
        paused: query.bool("paused")?,
        tags: query.strings("tags"),
        all_tags,
        owners: query.strings("owners"),
        dag_id_matches,
        favorite_of: query.bool("is_favorite")?.map(|favorite| (user.to_string(), favorite)),
    })
}

/// Loads a DAG or answers 404.
pub(crate) async fn dag_or_404(db: &impl GenericClient, dag_id: &str) -> Result<DagRow, ApiError> {
    db::dags::get(db, dag_id).await?.ok_or_else(|| dag_not_found(dag_id))
}

/// The 404 for an unknown DAG.
pub(crate) fn dag_not_found(dag_id: &str) -> ApiError {
    ApiError::NotFound(format!("DAG `{dag_id}` not found"))
}

order_by_param!(DagOrder, db::dags::ORDER_FIELDS);

/// `GET /api/v2/dags`: a page of the DAGs the filters keep, ordered by `order_by`
/// (`dag_id`, `dag_display_name`, `last_run_state`, `last_run_start_date`, `state`, `start_date`).
#[utoipa::path(get, path = "/api/v2/dags", operation_id = "get_dags", tag = "DAG", params(PageParams, DagOrder, Filters<DagFilters>), responses((status = 200, body = DagCollection)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    ApiQuery(page): ApiQuery<PageParams>,
    ApiQuery(order): ApiQuery<OrderParams>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> Result<Json<DagCollection>, ApiError> {
    let page = page.page()?;
    let order_by = order.sql(db::dags::ORDER_FIELDS, db::dags::DEFAULT_ORDER, db::dags::DEFAULT_ORDER)?;
    let filter = dag_filter_of(&QueryPairs(pairs), &user.username)?;
    let db = state.db().await?;
    let (dags, total_entries) = db::dags::list_filtered(&db, &filter, &order_by, page.limit, page.offset).await?;
    Ok(Json(DagCollection { dags: dag_responses(&db, dags).await?, total_entries }))
}

/// The filters of `PATCH /dags`, for the OpenAPI document only (the handler reads the raw query).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // never constructed: it exists for its `IntoParams` impl
pub(crate) struct PatchDagsFilters {
    /// Required unless `dag_id_prefix_pattern` is given: case-insensitive substring of the DAG id;
    /// `|` separates alternatives; `~` or `%` alone matches every DAG.
    dag_id_pattern: Option<String>,
    /// Case-sensitive prefix of the DAG id; `|` separates alternatives.
    dag_id_prefix_pattern: Option<String>,
    /// Only paused (true) or unpaused (false) DAGs.
    paused: Option<bool>,
    /// Leave out DAGs whose file is gone (default true).
    exclude_stale: Option<bool>,
    /// DAGs with any (or, with `tags_match_mode=all`, all) of these tags.
    tags: Vec<String>,
    /// `any` (default) or `all`.
    #[param(inline)]
    tags_match_mode: Option<TagsMatchMode>,
    /// DAGs with any of these owners.
    owners: Vec<String>,
}

/// The filters of `PATCH /dags`: as `GET /dags`'s, but one of `dag_id_pattern` and
/// `dag_id_prefix_pattern` is required (`~` or `%` matches every DAG), so a bare
/// request never pauses everything by accident.
fn patch_filter_of(query: &QueryPairs, user: &str) -> Result<DagFilter, ApiError> {
    if query.last("dag_id_pattern").is_none() && query.last("dag_id_prefix_pattern").is_none() {
        return Err(ApiError::BadRequest(
            "`dag_id_pattern` is required to patch several DAGs at once: name the DAGs (e.g. dag_id_pattern=etl_) \
             or pass dag_id_pattern=~ to patch every DAG the other filters keep"
                .into(),
        ));
    }
    let mut filter = dag_filter_of(query, user)?;
    // Airflow's clients write `%` for "every DAG"; gust matches `%` literally elsewhere.
    if query.last("dag_id_pattern").map(str::trim) == Some("%") {
        filter.dag_id_matches.retain(|m| *m != TextMatch::Contains(vec!["%".into()]));
    }
    Ok(filter)
}

/// `PATCH /api/v2/dags` with `{"is_paused": bool}`: pauses or unpauses every
/// DAG the filters keep; answers the page `limit`/`offset` pick of them, with their new state.
#[utoipa::path(patch, path = "/api/v2/dags", operation_id = "patch_dags", tag = "DAG", params(DagMask, PageParams, Filters<PatchDagsFilters>), request_body = DagPatchBody, responses((status = 200, body = DagCollection)))]
pub(crate) async fn patch_many(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    ApiQuery(params): ApiQuery<PatchParams>,
    ApiQuery(page): ApiQuery<PageParams>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
    ApiJson(body): ApiJson<Value, ANY_JSON>,
) -> Result<Json<DagCollection>, ApiError> {
    check_update_mask(&params.update_mask)?;
    let is_paused = is_paused_of(&body)?;
    let page = page.page()?;
    let filter = patch_filter_of(&QueryPairs(pairs), &user.username)?;
    let mut db = state.db().await?;
    let tx = db.transaction().await?;
    let order_by = db::dags::DEFAULT_ORDER;
    let (mut dags, total_entries) = db::dags::list_filtered(&tx, &filter, order_by, page.limit, page.offset).await?;
    let changed = db::dags::set_paused_filtered(&tx, &filter, is_paused).await?;
    tx.commit().await?;
    tracing::info!(changed, is_paused, user = %user.username, "DAGs paused or unpaused in bulk through the API");
    for dag in &mut dags {
        dag.is_paused = is_paused;
    }
    Ok(Json(DagCollection { dags: dag_responses(&db, dags).await?, total_entries }))
}

/// `GET /api/v2/dags/{dag_id}`
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}", operation_id = "get_dag", tag = "DAG", params(DagPath), responses((status = 200, body = DagResponse)))]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    ApiPath(dag_id): ApiPath<String>,
) -> Result<Json<DagResponse>, ApiError> {
    let db = state.db().await?;
    let dag = dag_or_404(&db, &dag_id).await?;
    Ok(Json(dag_response(&db, dag).await?))
}

/// Query of `PATCH /dags/{dag_id}`.
#[derive(Debug, Deserialize)]
pub(crate) struct PatchParams {
    /// Fields of the body to apply; only `is_paused` can be.
    #[serde(default)]
    update_mask: Vec<String>,
}

update_mask_param!(DagMask, ["is_paused"]);

/// Airflow's `DAGPatchBody` as gust takes it, for the OpenAPI document (the handler reads the JSON itself).
#[derive(ToSchema)]
#[allow(dead_code)] // never constructed: it exists for its `ToSchema` impl
pub(crate) struct DagPatchBody {
    /// Pause (true) or unpause (false) the DAG.
    is_paused: bool,
}

/// `PATCH /api/v2/dags/{dag_id}` with `{"is_paused": bool}`.
#[utoipa::path(patch, path = "/api/v2/dags/{dag_id}", operation_id = "patch_dag", tag = "DAG", params(DagPath, DagMask), request_body = DagPatchBody, responses((status = 200, body = DagResponse)))]
pub(crate) async fn patch(
    State(state): State<AppState>,
    ApiPath(dag_id): ApiPath<String>,
    ApiQuery(params): ApiQuery<PatchParams>,
    ApiJson(body): ApiJson<Value, ANY_JSON>,
) -> Result<Json<DagResponse>, ApiError> {
    check_update_mask(&params.update_mask)?;
    let is_paused = is_paused_of(&body)?;
    let db = state.db().await?;
    let dag = db::dags::set_paused(&db, &dag_id, is_paused).await?.ok_or_else(|| dag_not_found(&dag_id))?;
    tracing::info!(dag_id, is_paused, "DAG pause state changed through the API");
    Ok(Json(dag_response(&db, dag).await?))
}

/// `DELETE /api/v2/dags/{dag_id}`: deletes the DAG's metadata (runs, task
/// instances and their tries, logs and XComs, versions, backfills) in one
/// transaction; 204. 409 while one of its task instances is queued or running,
/// as Airflow's "still running". The DAG file stays, so the schedulers register
/// the DAG again (as new, unpaused) on their next rescan. Needs the admin role.
#[utoipa::path(delete, path = "/api/v2/dags/{dag_id}", operation_id = "delete_dag", tag = "DAG", params(DagPath), responses((status = 204, description = "Deleted"), (status = 409, description = "A task instance of the DAG is queued or running")))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    ApiPath(dag_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let mut db = state.db().await?;
    let tx = db.transaction().await?;
    match db::dags::delete(&tx, &dag_id).await? {
        Deletion::Deleted => {
            tx.commit().await?;
            tracing::info!(dag_id, "DAG metadata deleted through the API");
            Ok(StatusCode::NO_CONTENT)
        }
        Deletion::NotFound => Err(dag_not_found(&dag_id)),
        Deletion::Busy(tasks) => Err(still_running(&format!("DAG `{dag_id}`"), &tasks)),
    }
}

/// The 409 for deleting `what` while `tasks` are queued or running, naming a few of them.
pub(crate) fn still_running(what: &str, tasks: &[BusyTask]) -> ApiError {
    const SHOWN: usize = 5;
    let mut named: Vec<String> = tasks
        .iter()
        .take(SHOWN)
        .map(|t| {
            let mapped = if t.map_index == -1 { String::new() } else { format!("[{}]", t.map_index) };
            format!("`{}`{mapped} of run `{}` is {}", t.task_id, t.run_id, t.state)
        })
        .collect();
    if tasks.len() > SHOWN {
        named.push(format!("and {} more", tasks.len() - SHOWN));
    }
    ApiError::Conflict(format!(
        "{what} still has task instances queued or running ({}); wait for them to finish or mark them failed, \
         then delete again",
        named.join(", ")
    ))
}

/// Only `is_paused` may be named in `update_mask`.
fn check_update_mask(update_mask: &[String]) -> Result<(), ApiError> {
    match crate::extract::mask_fields(update_mask).into_iter().find(|field| *field != "is_paused") {
        None => Ok(()),
        Some(field) => Err(ApiError::BadRequest(format!(
            "only `is_paused` can be updated through the API; update_mask names `{field}`"
        ))),
    }
}

/// The `is_paused` boolean of a PATCH body.
fn is_paused_of(body: &Value) -> Result<bool, ApiError> {
    let Some(object) = body.as_object() else {
        return Err(ApiError::BadRequest("the body must be a JSON object such as {\"is_paused\": true}".into()));
    };
    match object.get("is_paused") {
        Some(Value::Bool(paused)) => Ok(*paused),
        Some(other) => Err(ApiError::BadRequest(format!("`is_paused` must be true or false, got {other}"))),
        None => Err(ApiError::BadRequest("`is_paused` is required, e.g. {\"is_paused\": true}".into())),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn schedules_get_a_person_readable_description() {
        assert_eq!(timetable_description(None), "Never, external triggers only");
        assert_eq!(timetable_description(Some("@daily")), "At 00:00");
        assert_eq!(timetable_description(Some("0 3 * * *")), "cron: 0 3 * * *");
        assert_eq!(timetable_description(Some("@once")), "Once, as soon as possible");
        assert_eq!(timetable_description(Some("Asset")), "Triggered by assets");
        assert_eq!(timetable_description(Some("every 15m")), "every 15m");
    }

    #[test]
    fn is_paused_must_be_a_boolean() {
        assert!(is_paused_of(&json!({"is_paused": true})).unwrap());
        assert!(!is_paused_of(&json!({"is_paused": false, "other": 1})).unwrap());
        for bad in [json!({}), json!({"is_paused": "yes"}), json!([true]), json!(null)] {
            assert!(matches!(is_paused_of(&bad), Err(ApiError::BadRequest(_))), "{bad}");
        }
    }

    #[test]
    fn a_busy_delete_names_a_few_task_instances_and_counts_the_rest() {
        let busy = |i: i32| BusyTask {
            run_id: "r1".into(),
            task_id: "t".into(),
            map_index: i,
            state: if i == 0 { "running".into() } else { "queued".into() },
        };
        let detail = still_running("DAG `etl`", &(0..7).map(busy).collect::<Vec<_>>()).to_string();
        assert!(
            detail.starts_with("DAG `etl` still has task instances queued or running (`t`[0] of run `r1` is running")
        );
        assert!(detail.contains("`t`[4] of run `r1` is queued, and 2 more)"), "{detail}");
    }

    #[test]
    fn dag_filters_read_airflows_parameters() {
        let query = |text: &str| QueryPairs(serde_html_form::from_str(text).unwrap());
        let filter = dag_filter_of(&query("tags=a&tags=b&tags_match_mode=all&owners=ana&paused=false"), "ana").unwrap();
        assert_eq!(
            (filter.tags, filter.all_tags, filter.owners),
            (vec!["a".into(), "b".into()], true, vec!["ana".into()])
        );
        assert_eq!((filter.paused, filter.only_active), (Some(false), true));
        let names = dag_filter_of(&query("dag_id_pattern=x&dag_display_name_prefix_pattern=y"), "ana").unwrap();
        assert_eq!(names.dag_id_matches.len(), 2);
        assert!(!dag_filter_of(&query("exclude_stale=false"), "ana").unwrap().only_active);
        let favorites = dag_filter_of(&query("is_favorite=true"), "ana").unwrap();
        assert_eq!(favorites.favorite_of, Some(("ana".into(), true)));
    }

    #[test]
    fn patching_many_dags_needs_a_dag_id_pattern_and_percent_means_every_dag() {
        let query = |text: &str| QueryPairs(serde_html_form::from_str(text).unwrap());
        let error = patch_filter_of(&query("paused=false"), "ana").unwrap_err().to_string();
        assert!(error.contains("`dag_id_pattern` is required") && error.contains("dag_id_pattern=~"), "{error}");
        assert!(patch_filter_of(&query("dag_id_pattern=%25"), "ana").unwrap().dag_id_matches.is_empty());
        assert!(patch_filter_of(&query("dag_id_pattern=~"), "ana").unwrap().dag_id_matches.is_empty());
        assert_eq!(patch_filter_of(&query("dag_id_prefix_pattern=etl"), "ana").unwrap().dag_id_matches.len(), 1);
    }

    #[test]
    fn update_mask_may_only_name_is_paused() {
        assert!(check_update_mask(&[]).is_ok());
        assert!(check_update_mask(&["is_paused".into()]).is_ok());
        let error = check_update_mask(&["is_paused,owners".into()]).unwrap_err().to_string();
        assert!(error.contains("owners"), "{error}");
    }
}
