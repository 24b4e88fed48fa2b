//! `/api/v2/dags`: list DAGs, read one, pause or unpause it.

use std::path::Path;

use axum::{extract::State, Json};
use chrono::{DateTime, Utc};
use gust_shared::db::{self, dags::DagRow, GenericClient};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::pagination::PageParams;
use crate::{
    error::ApiError,
    extract::{ApiJson, ApiPath, ApiQuery},
    AppState,
};

/// Airflow's `DAGResponse`.
#[derive(Debug, Serialize)]
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
    bundle_name: &'static str,
    bundle_version: Option<String>,
}

/// Airflow's `DagTagResponse`.
#[derive(Debug, Serialize)]
struct DagTagResponse {
    name: String,
    dag_id: String,
    dag_display_name: String,
}

/// Airflow's `DAGCollectionResponse`.
#[derive(Debug, Serialize)]
pub(crate) struct DagCollection {
    dags: Vec<DagResponse>,
    total_entries: i64,
}

/// The only DAG bundle gust has: the scheduler's DAG folder.
pub(crate) const BUNDLE_NAME: &str = "dags-folder";

impl From<DagRow> for DagResponse {
    fn from(dag: DagRow) -> Self {
        let periodic = dag.schedule.is_some();
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
            next_dagrun_logical_date: None,
            next_dagrun_data_interval_start: None,
            next_dagrun_data_interval_end: None,
            next_dagrun_run_after: None,
            bundle_name: BUNDLE_NAME,
            bundle_version: None,
            fileloc: dag.fileloc,
            dag_id: dag.dag_id,
        }
    }
}

/// A person-readable description of a schedule, as Airflow shows it.
fn timetable_description(schedule: Option<&str>) -> String {
    match schedule {
        None => "Never, external triggers only".into(),
        Some("@hourly") => "At the start of every hour".into(),
        Some("@daily" | "@midnight") => "At 00:00".into(),
        Some("@weekly") => "At 00:00, only on Sunday".into(),
        Some("@monthly") => "At 00:00, on day 1 of the month".into(),
        Some("@yearly" | "@annually") => "At 00:00, on day 1 of January".into(),
        Some("@once") => "Once, as soon as possible".into(),
        Some(every) if every.starts_with("every ") => every.into(),
        Some(cron) => format!("cron: {cron}"),
    }
}

/// Filters of `GET /dags`.
#[derive(Debug, Deserialize)]
pub(crate) struct DagFilters {
    exclude_stale: Option<bool>,
    paused: Option<bool>,
}

/// Loads a DAG or answers 404.
pub(crate) async fn dag_or_404(db: &impl GenericClient, dag_id: &str) -> Result<DagRow, ApiError> {
    db::dags::get(db, dag_id).await?.ok_or_else(|| dag_not_found(dag_id))
}

/// The 404 for an unknown DAG.
pub(crate) fn dag_not_found(dag_id: &str) -> ApiError {
    ApiError::NotFound(format!("DAG `{dag_id}` not found"))
}

/// `GET /api/v2/dags`
pub(crate) async fn list(
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<PageParams>,
    ApiQuery(filters): ApiQuery<DagFilters>,
) -> Result<Json<DagCollection>, ApiError> {
    let page = page.page()?;
    if filters.paused.is_some() {
        return Err(ApiError::BadRequest(
            "the `paused` filter is not supported yet; list all DAGs and filter on `is_paused`".into(),
        ));
    }
    let db = state.db().await?;
    let only_active = filters.exclude_stale.unwrap_or(true);
    let (dags, total_entries) = db::dags::list(&db, page.limit, page.offset, only_active).await?;
    Ok(Json(DagCollection { dags: dags.into_iter().map(DagResponse::from).collect(), total_entries }))
}

/// `GET /api/v2/dags/{dag_id}`
pub(crate) async fn get_one(
    State(state): State<AppState>,
    ApiPath(dag_id): ApiPath<String>,
) -> Result<Json<DagResponse>, ApiError> {
    let db = state.db().await?;
    Ok(Json(dag_or_404(&db, &dag_id).await?.into()))
}

/// Query of `PATCH /dags/{dag_id}`.
#[derive(Debug, Deserialize)]
pub(crate) struct PatchParams {
    update_mask: Option<String>,
}

/// `PATCH /api/v2/dags/{dag_id}` with `{"is_paused": bool}`.
pub(crate) async fn patch(
    State(state): State<AppState>,
    ApiPath(dag_id): ApiPath<String>,
    ApiQuery(params): ApiQuery<PatchParams>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<DagResponse>, ApiError> {
    check_update_mask(params.update_mask.as_deref())?;
    let is_paused = is_paused_of(&body)?;
    let db = state.db().await?;
    let dag = db::dags::set_paused(&db, &dag_id, is_paused).await?.ok_or_else(|| dag_not_found(&dag_id))?;
    tracing::info!(dag_id, is_paused, "DAG pause state changed through the API");
    Ok(Json(dag.into()))
}

/// Only `is_paused` may be named in `update_mask`.
fn check_update_mask(mask: Option<&str>) -> Result<(), ApiError> {
    let Some(mask) = mask else { return Ok(()) };
    match mask.split(',').map(str::trim).find(|field| !field.is_empty() && *field != "is_paused") {
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
    fn update_mask_may_only_name_is_paused() {
        assert!(check_update_mask(None).is_ok());
        assert!(check_update_mask(Some("is_paused")).is_ok());
        let error = check_update_mask(Some("is_paused,owners")).unwrap_err().to_string();
        assert!(error.contains("owners"), "{error}");
    }
}
