//! `/api/v2/assets/events`: the events recorded on assets (by a task's
//! outlets, or posted here from outside gust) with the runs they created, and
//! a run's upstream events (the ones that triggered it).

use axum::{extract::State, Json};
use chrono::{DateTime, Utc};
use gust_shared::db::{
    self,
    assets::{
        reads::{CreatedRun, EventDetails, EventFilter},
        NewAssetEvent,
    },
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{
    assets::{asset_not_found, masked},
    dag_runs::run_or_404,
    list_query::{Filters, QueryPairs},
    pagination::{order_by_param, OrderParams, PageParams},
    path_params::RunPath,
};
use crate::{
    error::ApiError,
    extract::{ApiJson, ApiPath, ApiQuery},
    AppState,
};

/// Longest `partition_key` (Airflow's `ID_LEN`).
const MAX_PARTITION_KEY_LEN: usize = 250;

/// Airflow's `DagRunAssetReference`: a run an event took part in creating.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DagRunAssetReference {
    run_id: String,
    dag_id: String,
    logical_date: Option<DateTime<Utc>>,
    /// When the run started; when it was queued while it has not started yet.
    start_date: DateTime<Utc>,
    end_date: Option<DateTime<Utc>>,
    state: String,
    data_interval_start: Option<DateTime<Utc>>,
    data_interval_end: Option<DateTime<Utc>>,
    partition_key: Option<String>,
    /// Whether this event triggered the run: only a run's most recent consumed
    /// event triggers it; earlier consumed events are included but did not trigger it.
    triggering: bool,
}

/// Airflow's `AssetEventResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AssetEventResponse {
    id: i64,
    asset_id: i64,
    uri: Option<String>,
    name: Option<String>,
    group: Option<String>,
    /// The event's extra, values of secret-looking fields masked.
    #[schema(value_type = Option<Object>)]
    extra: Option<Value>,
    source_task_id: Option<String>,
    source_dag_id: Option<String>,
    source_run_id: Option<String>,
    source_map_index: i32,
    created_dagruns: Vec<DagRunAssetReference>,
    timestamp: DateTime<Utc>,
    partition_key: Option<String>,
}

/// Airflow's `AssetEventCollectionResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AssetEventCollectionResponse {
    asset_events: Vec<AssetEventResponse>,
    total_entries: i64,
}

impl From<CreatedRun> for DagRunAssetReference {
    fn from(run: CreatedRun) -> Self {
        Self {
            run_id: run.run_id,
            dag_id: run.dag_id,
            logical_date: run.logical_date,
            start_date: run.start_date,
            end_date: run.end_date,
            state: run.state,
            data_interval_start: run.data_interval_start,
            data_interval_end: run.data_interval_end,
            partition_key: run.partition_key,
            triggering: run.triggering,
        }
    }
}

impl From<EventDetails> for AssetEventResponse {
    fn from(details: EventDetails) -> Self {
        let event = details.event;
        Self {
            id: event.id,
            asset_id: event.asset_id,
            uri: Some(details.uri),
            name: Some(details.name),
            group: Some(details.group),
            extra: Some(masked(event.extra)),
            source_task_id: event.source_task_id,
            source_dag_id: event.source_dag_id,
            source_run_id: event.source_run_id,
            source_map_index: event.source_map_index,
            created_dagruns: details.created_dagruns.into_iter().map(Into::into).collect(),
            timestamp: event.timestamp,
            partition_key: event.partition_key,
        }
    }
}

/// The filters of `GET /assets/events`, for the OpenAPI document only: the
/// handler reads them from the raw query so that every bad value is a 400 naming its parameter.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // never constructed: it exists for its `IntoParams` impl
pub(crate) struct EventFilters {
    /// Events of this asset.
    asset_id: Option<i64>,
    /// Produced by a task of this DAG.
    source_dag_id: Option<String>,
    /// Produced by this task.
    source_task_id: Option<String>,
    /// Produced in this run.
    source_run_id: Option<String>,
    /// Produced by this mapped instance (-1: unmapped, or from outside gust).
    source_map_index: Option<i32>,
    /// Case-insensitive substring of the asset's name; `|` separates alternatives.
    name_pattern: Option<String>,
    /// Case-sensitive prefix of the asset's name.
    name_prefix_pattern: Option<String>,
    /// Recorded at or after this time.
    timestamp_gte: Option<DateTime<Utc>>,
    /// Recorded after this time.
    timestamp_gt: Option<DateTime<Utc>>,
    /// Recorded at or before this time.
    timestamp_lte: Option<DateTime<Utc>>,
    /// Recorded before this time.
    timestamp_lt: Option<DateTime<Utc>>,
}

/// The filters of `GET /assets/events`, checked.
fn event_filter_of(query: &QueryPairs) -> Result<EventFilter, ApiError> {
    let text = |key: &str| query.last(key).map(str::to_string);
    Ok(EventFilter {
        asset_id: query.integer("asset_id")?,
        source_dag_id: text("source_dag_id"),
        source_task_id: text("source_task_id"),
        source_run_id: text("source_run_id"),
        source_map_index: query.integer("source_map_index")?,
        name_matches: query.text_matches("name"),
        timestamp: query.time_range("timestamp")?,
    })
}

order_by_param!(EventOrder, db::assets::reads::EVENT_ORDER_FIELDS);

/// `GET /api/v2/assets/events`: a page of the events the filters keep, each
/// with the runs it created, oldest first unless `order_by` says otherwise.
#[utoipa::path(get, path = "/api/v2/assets/events", operation_id = "get_asset_events", tag = "Asset", params(PageParams, EventOrder, Filters<EventFilters>), responses((status = 200, body = AssetEventCollectionResponse)))]
pub(crate) async fn get_asset_events(
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<PageParams>,
    ApiQuery(order): ApiQuery<OrderParams>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> Result<Json<AssetEventCollectionResponse>, ApiError> {
    use db::assets::reads::{EVENT_DEFAULT_ORDER, EVENT_ORDER_FIELDS, ORDER_TIEBREAK};
    let page = page.page()?;
    let order_by = order.sql(EVENT_ORDER_FIELDS, EVENT_DEFAULT_ORDER, ORDER_TIEBREAK)?;
    let filter = event_filter_of(&QueryPairs(pairs))?;
    let db = state.db().await?;
    let (events, total_entries) =
        db::assets::reads::list_events(&db, &filter, &order_by, page.limit, page.offset).await?;
    Ok(Json(AssetEventCollectionResponse { asset_events: events.into_iter().map(Into::into).collect(), total_entries }))
}

/// Airflow's `AssetEventAccessControl`: accepted for compatibility; gust has
/// no teams, so every DAG scheduled on the asset consumes the event.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read for validation only
pub(crate) struct AssetEventAccessControl {
    consumer_teams: Option<Vec<String>>,
    #[serde(default)]
    allow_global: Option<bool>,
}

/// Body of `POST /assets/events` (Airflow's `CreateAssetEventsBody`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateAssetEventsBody {
    /// The asset that changed.
    asset_id: i64,
    /// The partition the event is for: 1-250 characters, not all whitespace.
    #[schema(max_length = 250, pattern = r"\S")]
    partition_key: Option<String>,
    /// A JSON object describing the change; gust adds `"from_rest_api": true`, as Airflow does.
    #[serde(default)]
    #[schema(value_type = Object)]
    extra: serde_json::Map<String, Value>,
    #[allow(dead_code)]
    access_control: Option<AssetEventAccessControl>,
}

/// `POST /api/v2/assets/events`: records an event on an asset from outside gust
/// (no source task) and queues it for every DAG scheduled on the asset.
#[utoipa::path(post, path = "/api/v2/assets/events", operation_id = "create_asset_event", tag = "Asset", request_body = CreateAssetEventsBody, responses((status = 200, body = AssetEventResponse), (status = 404, description = "The asset `asset_id` names does not exist")))]
pub(crate) async fn create_asset_event(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateAssetEventsBody>,
) -> Result<Json<AssetEventResponse>, ApiError> {
    if let Some(key) = &body.partition_key {
        if key.trim().is_empty() || key.chars().count() > MAX_PARTITION_KEY_LEN {
            return Err(ApiError::invalid(
                ["body", "partition_key"],
                "string_too_long",
                format!(
                    "`partition_key` must be 1-{MAX_PARTITION_KEY_LEN} characters and not only whitespace; leave it \
                     out for none"
                ),
            ));
        }
    }
    let mut extra = body.extra;
    extra.insert("from_rest_api".into(), Value::Bool(true));
    let extra = Value::Object(extra);

    let mut db = state.db().await?;
    let tx = db.transaction().await?;
    let asset =
        db::assets::reads::find_asset(&tx, body.asset_id).await?.ok_or_else(|| asset_not_found(body.asset_id))?;
    let event = db::assets::record_event(
        &tx,
        &NewAssetEvent {
            asset_id: asset.id,
            extra: &extra,
            source_dag_id: None,
            source_task_id: None,
            source_run_id: None,
            source_map_index: -1,
            partition_key: body.partition_key.as_deref(),
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(asset_id = asset.id, event_id = event.id, "asset event recorded through the API");
    let details = EventDetails { event, uri: asset.uri, name: asset.name, group: asset.group, created_dagruns: vec![] };
    Ok(Json(details.into()))
}

/// `GET /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/upstreamAssetEvents`: the
/// events that triggered an asset-triggered run (none for other runs).
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/upstreamAssetEvents", operation_id = "get_upstream_asset_events", tag = "DagRun", params(RunPath), responses((status = 200, body = AssetEventCollectionResponse)))]
pub(crate) async fn get_upstream_asset_events(
    State(state): State<AppState>,
    ApiPath((dag_id, dag_run_id)): ApiPath<(String, String)>,
) -> Result<Json<AssetEventCollectionResponse>, ApiError> {
    let db = state.db().await?;
    let run = run_or_404(&db, &dag_id, &dag_run_id).await?;
    let events = db::assets::reads::consumed_events(&db, run.id).await?;
    let total_entries = i64::try_from(events.len()).unwrap_or(i64::MAX);
    Ok(Json(AssetEventCollectionResponse { asset_events: events.into_iter().map(Into::into).collect(), total_entries }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(text: &str) -> QueryPairs {
        QueryPairs(serde_html_form::from_str(text).unwrap())
    }

    #[test]
    fn event_filters_read_ids_map_indexes_and_timestamp_ranges() {
        let filter = event_filter_of(&query("asset_id=3&source_map_index=-1&timestamp_gte=2026-01-01")).unwrap();
        assert_eq!(filter.asset_id, Some(3));
        assert_eq!(filter.source_map_index, Some(-1));
        assert!(filter.timestamp.gte.is_some() && filter.timestamp.lt.is_none());
    }

    #[test]
    fn a_bad_number_or_time_is_a_bad_request_naming_its_parameter() {
        let error = event_filter_of(&query("asset_id=one")).unwrap_err().to_string();
        assert!(error.contains("`asset_id`"), "{error}");
        let error = event_filter_of(&query("timestamp_lt=later")).unwrap_err().to_string();
        assert!(error.contains("`timestamp_lt`"), "{error}");
    }

    #[test]
    fn a_posted_event_takes_only_airflows_fields() {
        assert!(serde_json::from_str::<CreateAssetEventsBody>(r#"{"asset_id": 1, "extra": {"a": 1}}"#).is_ok());
        assert!(serde_json::from_str::<CreateAssetEventsBody>(r#"{"asset_id": 1, "source_dag_id": "x"}"#).is_err());
        assert!(serde_json::from_str::<CreateAssetEventsBody>(r#"{"extra": {}}"#).is_err());
    }
}
