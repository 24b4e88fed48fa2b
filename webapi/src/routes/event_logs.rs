//! `/api/v2/eventLogs`: the audit log (Airflow's event log) that
//! [`crate::audit`] writes, in Airflow's shape, with its filters.

use axum::{extract::State, Json};
use chrono::{DateTime, Utc};
use gust_shared::db::{
    self,
    event_log::{EventFilter, EventLogRow},
};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::{
    list_query::{parse_time, Filters, QueryPairs},
    pagination::{order_by_param, OrderParams, PageParams},
};
use crate::{
    error::ApiError,
    extract::{ApiPath, ApiQuery},
    AppState,
};

/// Airflow's `EventLogResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EventLogResponse {
    event_log_id: i64,
    when: DateTime<Utc>,
    dag_id: Option<String>,
    task_id: Option<String>,
    run_id: Option<String>,
    map_index: Option<i32>,
    try_number: Option<i32>,
    event: String,
    logical_date: Option<DateTime<Utc>>,
    owner: Option<String>,
    /// The request's relevant fields as JSON text, secrets masked.
    extra: Option<String>,
    dag_display_name: Option<String>,
    task_display_name: Option<String>,
}

/// Airflow's `EventLogCollectionResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EventLogCollection {
    event_logs: Vec<EventLogResponse>,
    total_entries: i64,
}

impl From<EventLogRow> for EventLogResponse {
    fn from(row: EventLogRow) -> Self {
        let event = row.event;
        Self {
            event_log_id: row.id,
            when: row.when,
            dag_display_name: event.dag_id.clone(),
            task_display_name: event.task_id.clone(),
            dag_id: event.dag_id,
            task_id: event.task_id,
            run_id: event.run_id,
            map_index: event.map_index,
            try_number: event.try_number,
            event: event.event,
            logical_date: event.logical_date,
            owner: event.owner,
            extra: event.extra.map(|extra| extra.to_string()),
        }
    }
}

/// The filters of `GET /eventLogs`, for the OpenAPI document only: the
/// handler reads them from the raw query ([`filter_of`]) so that every bad
/// value is a 400 naming its parameter.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // never constructed: it exists for its `IntoParams` impl
pub(crate) struct EventLogFilters {
    /// This DAG.
    dag_id: Option<String>,
    /// This task.
    task_id: Option<String>,
    /// This run.
    run_id: Option<String>,
    /// This mapped instance.
    map_index: Option<i32>,
    /// This try.
    try_number: Option<i32>,
    /// Done by this user.
    owner: Option<String>,
    /// This event (`trigger_dag_run`, `clear`, `login_failed`, …).
    event: Option<String>,
    /// None of these events: repeated keys or comma-separated.
    excluded_events: Vec<String>,
    /// Any of these events: repeated keys or comma-separated.
    included_events: Vec<String>,
    /// Recorded before this time.
    before: Option<DateTime<Utc>>,
    /// Recorded after this time.
    after: Option<DateTime<Utc>>,
    /// Case-insensitive substring of the DAG id; `|` separates alternatives.
    dag_id_pattern: Option<String>,
    /// Case-sensitive prefix of the DAG id.
    dag_id_prefix_pattern: Option<String>,
    /// Case-insensitive substring of the task id.
    task_id_pattern: Option<String>,
    /// Case-sensitive prefix of the task id.
    task_id_prefix_pattern: Option<String>,
    /// Case-insensitive substring of the run id.
    run_id_pattern: Option<String>,
    /// Case-sensitive prefix of the run id.
    run_id_prefix_pattern: Option<String>,
    /// Case-insensitive substring of the owner.
    owner_pattern: Option<String>,
    /// Case-sensitive prefix of the owner.
    owner_prefix_pattern: Option<String>,
    /// Case-insensitive substring of the event.
    event_pattern: Option<String>,
    /// Case-sensitive prefix of the event.
    event_prefix_pattern: Option<String>,
}

/// Airflow's `get_event_logs` filters gust cannot apply: given, they are a 400, never silently ignored.
const UNSUPPORTED_FILTERS: &[&str] =
    &["task_instance_id", "owner_display_name_pattern", "owner_display_name_prefix_pattern", "teams"];

/// Every event a list filter names: repeated keys, each possibly comma-separated.
fn events(query: &QueryPairs, key: &str) -> Vec<String> {
    query
        .all(key)
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(String::from)
        .collect()
}

/// The filters of `GET /eventLogs`, checked.
fn filter_of(query: &QueryPairs) -> Result<EventFilter, ApiError> {
    query.refuse(UNSUPPORTED_FILTERS)?;
    let time = |key: &str| query.last(key).map(|value| parse_time(key, value)).transpose();
    let text = |key: &str| query.last(key).map(str::to_string);
    Ok(EventFilter {
        dag_id: text("dag_id"),
        task_id: text("task_id"),
        run_id: text("run_id"),
        map_index: query.integer("map_index")?,
        try_number: query.integer("try_number")?,
        owner: text("owner"),
        event: text("event"),
        excluded_events: events(query, "excluded_events"),
        included_events: events(query, "included_events"),
        before: time("before")?,
        after: time("after")?,
        dag_id_matches: query.text_matches("dag_id"),
        task_id_matches: query.text_matches("task_id"),
        run_id_matches: query.text_matches("run_id"),
        owner_matches: query.text_matches("owner"),
        event_matches: query.text_matches("event"),
    })
}

order_by_param!(EventLogOrder, db::event_log::ORDER_FIELDS);

/// `GET /api/v2/eventLogs`: a page of the audit log that the filters keep,
/// oldest first unless `order_by` says otherwise (`-when` for newest first).
#[utoipa::path(get, path = "/api/v2/eventLogs", tag = "Event Log", params(PageParams, EventLogOrder, Filters<EventLogFilters>), responses((status = 200, body = EventLogCollection)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<PageParams>,
    ApiQuery(order): ApiQuery<OrderParams>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> Result<Json<EventLogCollection>, ApiError> {
    let page = page.page()?;
    let order_by =
        order.sql(db::event_log::ORDER_FIELDS, db::event_log::DEFAULT_ORDER, db::event_log::ORDER_TIEBREAK)?;
    let filter = filter_of(&QueryPairs(pairs))?;
    let db = state.db().await?;
    let (rows, total_entries) = db::event_log::list_filtered(&db, &filter, &order_by, page.limit, page.offset).await?;
    Ok(Json(EventLogCollection { event_logs: rows.into_iter().map(Into::into).collect(), total_entries }))
}

/// `GET /api/v2/eventLogs/{event_log_id}`
#[utoipa::path(get, path = "/api/v2/eventLogs/{event_log_id}", tag = "Event Log", params(("event_log_id" = i64, Path, description = "The record's id")), responses((status = 200, body = EventLogResponse)))]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    ApiPath(event_log_id): ApiPath<i64>,
) -> Result<Json<EventLogResponse>, ApiError> {
    let db = state.db().await?;
    let row = db::event_log::get(&db, event_log_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("the event log record with id `{event_log_id}` was not found")))?;
    Ok(Json(row.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(text: &str) -> QueryPairs {
        QueryPairs(serde_html_form::from_str(text).unwrap())
    }

    #[test]
    fn event_lists_are_repeated_keys_or_comma_separated() {
        let filter =
            filter_of(&query("included_events=clear,login&included_events=post_pool&excluded_events=")).unwrap();
        assert_eq!(filter.included_events, ["clear", "login", "post_pool"]);
        assert!(filter.excluded_events.is_empty());
    }

    #[test]
    fn a_bad_number_or_time_is_a_bad_request_naming_its_parameter() {
        let error = filter_of(&query("map_index=two")).unwrap_err().to_string();
        assert!(error.contains("`map_index`"), "{error}");
        let error = filter_of(&query("before=yesterday")).unwrap_err().to_string();
        assert!(error.contains("`before`"), "{error}");
        let error = filter_of(&query("teams=a")).unwrap_err().to_string();
        assert!(error.contains("`teams`"), "{error}");
    }
}
