//! `/api/v2/assets`: the assets DAG files name (Airflow 3's data-aware
//! scheduling) with the DAGs and tasks that reference them, their aliases, and
//! materializing an asset by triggering the one DAG that produces it.

use axum::{
    body::{Body, Bytes},
    extract::{FromRequest, Request, State},
    Extension, Json,
};
use chrono::{DateTime, Utc};
use gust_shared::db::{
    self,
    assets::reads::{AliasRow, AssetDetails, AssetFilter, DagReference, TaskReference},
};
use serde::Serialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{
    dag_runs::{create_run, DagRunResponse, TriggerBody, TriggerRequest},
    list_query::{Filters, QueryPairs},
    pagination::{order_by_param, OrderParams, PageParams},
};
use crate::{
    auth::CurrentUser,
    error::ApiError,
    extract::{ApiJson, ApiPath, ApiQuery},
    AppState,
};

/// `{asset_id}`: an asset.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // never constructed: it exists for its `IntoParams` impl
pub(crate) struct AssetPath {
    /// The asset's id.
    asset_id: i64,
}

/// Airflow's `DagScheduleAssetReference`: a DAG scheduled on the asset.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DagScheduleAssetReference {
    dag_id: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// Airflow's `TaskOutletAssetReference`: a task that produces the asset.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TaskOutletAssetReference {
    dag_id: String,
    task_id: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// Airflow's `TaskInletAssetReference`: a task that consumes the asset.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TaskInletAssetReference {
    dag_id: String,
    task_id: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// Airflow's `AssetAliasResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AssetAliasResponse {
    id: i64,
    name: String,
    group: String,
}

/// Airflow's `AssetAliasCollectionResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AssetAliasCollectionResponse {
    asset_aliases: Vec<AssetAliasResponse>,
    total_entries: i64,
}

/// Airflow's `AssetWatcherResponse`; gust has no asset watchers, so lists of them are empty.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // never constructed: it documents the (always empty) `watchers`
pub(crate) struct AssetWatcherResponse {
    name: String,
    trigger_id: i64,
    created_date: DateTime<Utc>,
}

/// Airflow's `LastAssetEventResponse`: both null when the asset has no event yet.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LastAssetEventResponse {
    #[schema(minimum = 0)]
    id: Option<i64>,
    timestamp: Option<DateTime<Utc>>,
}

/// Airflow's `AssetResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AssetResponse {
    id: i64,
    name: String,
    uri: String,
    group: String,
    /// The asset's extra from the DAG file, values of secret-looking fields masked.
    #[schema(value_type = Option<Object>)]
    extra: Option<Value>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    scheduled_dags: Vec<DagScheduleAssetReference>,
    producing_tasks: Vec<TaskOutletAssetReference>,
    consuming_tasks: Vec<TaskInletAssetReference>,
    aliases: Vec<AssetAliasResponse>,
    /// Always empty: gust has no asset watchers.
    watchers: Vec<AssetWatcherResponse>,
    last_asset_event: Option<LastAssetEventResponse>,
}

/// Airflow's `AssetCollectionResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AssetCollectionResponse {
    assets: Vec<AssetResponse>,
    total_entries: i64,
}

impl From<AliasRow> for AssetAliasResponse {
    fn from(alias: AliasRow) -> Self {
        Self { id: alias.id, name: alias.name, group: alias.group }
    }
}

impl From<DagReference> for DagScheduleAssetReference {
    fn from(r: DagReference) -> Self {
        Self { dag_id: r.dag_id, created_at: r.created_at, updated_at: r.updated_at }
    }
}

impl From<TaskReference> for TaskOutletAssetReference {
    fn from(r: TaskReference) -> Self {
        Self { dag_id: r.dag_id, task_id: r.task_id, created_at: r.created_at, updated_at: r.updated_at }
    }
}

impl From<TaskReference> for TaskInletAssetReference {
    fn from(r: TaskReference) -> Self {
        Self { dag_id: r.dag_id, task_id: r.task_id, created_at: r.created_at, updated_at: r.updated_at }
    }
}

/// A JSON value with the values of secret-looking fields masked, as Airflow redacts an asset's or event's extra.
pub(crate) fn masked(mut extra: Value) -> Value {
    crate::audit::mask_sensitive(&mut extra);
    extra
}

impl From<AssetDetails> for AssetResponse {
    fn from(details: AssetDetails) -> Self {
        let asset = details.asset;
        let (last_id, last_at) = asset.last_event.unzip();
        Self {
            id: asset.id,
            name: asset.name,
            uri: asset.uri,
            group: asset.group,
            extra: Some(masked(asset.extra)),
            created_at: asset.created_at,
            updated_at: asset.updated_at,
            scheduled_dags: details.scheduled_dags.into_iter().map(Into::into).collect(),
            producing_tasks: details.producing_tasks.into_iter().map(Into::into).collect(),
            consuming_tasks: details.consuming_tasks.into_iter().map(Into::into).collect(),
            aliases: details.aliases.into_iter().map(Into::into).collect(),
            watchers: Vec::new(),
            last_asset_event: Some(LastAssetEventResponse { id: last_id, timestamp: last_at }),
        }
    }
}

/// The 404 for an unknown asset.
pub(crate) fn asset_not_found(asset_id: i64) -> ApiError {
    ApiError::NotFound(format!("the asset with id `{asset_id}` was not found; GET /api/v2/assets lists them"))
}

/// The filters of `GET /assets`, for the OpenAPI document only: the handler
/// reads them from the raw query so that every bad value is a 400 naming its parameter.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // never constructed: it exists for its `IntoParams` impl
pub(crate) struct AssetFilters {
    /// Case-insensitive substring of the name; `|` separates alternatives.
    name_pattern: Option<String>,
    /// Case-sensitive prefix of the name.
    name_prefix_pattern: Option<String>,
    /// Case-insensitive substring of the URI; `|` separates alternatives.
    uri_pattern: Option<String>,
    /// Case-sensitive prefix of the URI.
    uri_prefix_pattern: Option<String>,
    /// Only assets one of these DAGs is scheduled on, produces or consumes: repeated keys or comma-separated.
    dag_ids: Vec<String>,
    /// Only assets a DAG still in the DAG folder references (default true).
    only_active: Option<bool>,
}

/// The filters of `GET /assets`, checked.
fn asset_filter_of(query: &QueryPairs) -> Result<AssetFilter, ApiError> {
    let dag_ids: Vec<String> = query
        .all("dag_ids")
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(String::from)
        .collect();
    Ok(AssetFilter {
        name_matches: query.text_matches("name"),
        uri_matches: query.text_matches("uri"),
        dag_ids: (!dag_ids.is_empty()).then_some(dag_ids),
        only_active: query.bool("only_active")?.unwrap_or(true),
    })
}

order_by_param!(AssetOrder, db::assets::reads::ASSET_ORDER_FIELDS);

/// `GET /api/v2/assets`: a page of the assets the filters keep, with the DAGs
/// and tasks that reference each and its latest event, by id unless `order_by` says otherwise.
#[utoipa::path(get, path = "/api/v2/assets", operation_id = "get_assets", tag = "Asset", params(PageParams, AssetOrder, Filters<AssetFilters>), responses((status = 200, body = AssetCollectionResponse)))]
pub(crate) async fn get_assets(
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<PageParams>,
    ApiQuery(order): ApiQuery<OrderParams>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> Result<Json<AssetCollectionResponse>, ApiError> {
    use db::assets::reads::{ASSET_DEFAULT_ORDER, ASSET_ORDER_FIELDS, ORDER_TIEBREAK};
    let page = page.page()?;
    let order_by = order.sql(ASSET_ORDER_FIELDS, ASSET_DEFAULT_ORDER, ORDER_TIEBREAK)?;
    let filter = asset_filter_of(&QueryPairs(pairs))?;
    let db = state.db().await?;
    let (assets, total_entries) =
        db::assets::reads::list_assets(&db, &filter, &order_by, page.limit, page.offset).await?;
    Ok(Json(AssetCollectionResponse { assets: assets.into_iter().map(Into::into).collect(), total_entries }))
}

/// `GET /api/v2/assets/{asset_id}`: one asset with the DAGs and tasks that reference it.
#[utoipa::path(get, path = "/api/v2/assets/{asset_id}", operation_id = "get_asset", tag = "Asset", params(AssetPath), responses((status = 200, body = AssetResponse)))]
pub(crate) async fn get_asset(
    State(state): State<AppState>,
    ApiPath(asset_id): ApiPath<i64>,
) -> Result<Json<AssetResponse>, ApiError> {
    let db = state.db().await?;
    let asset = db::assets::reads::get_asset(&db, asset_id).await?.ok_or_else(|| asset_not_found(asset_id))?;
    Ok(Json(asset.into()))
}

/// The filters of `GET /assets/aliases`, for the OpenAPI document only.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // never constructed: it exists for its `IntoParams` impl
pub(crate) struct AliasFilters {
    /// Case-insensitive substring of the name; `|` separates alternatives.
    name_pattern: Option<String>,
    /// Case-sensitive prefix of the name.
    name_prefix_pattern: Option<String>,
}

order_by_param!(AliasOrder, db::assets::reads::ALIAS_ORDER_FIELDS);

/// `GET /api/v2/assets/aliases`: a page of the asset aliases, by id unless `order_by` says otherwise.
#[utoipa::path(get, path = "/api/v2/assets/aliases", operation_id = "get_asset_aliases", tag = "Asset", params(PageParams, AliasOrder, Filters<AliasFilters>), responses((status = 200, body = AssetAliasCollectionResponse)))]
pub(crate) async fn get_asset_aliases(
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<PageParams>,
    ApiQuery(order): ApiQuery<OrderParams>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> Result<Json<AssetAliasCollectionResponse>, ApiError> {
    use db::assets::reads::{ALIAS_DEFAULT_ORDER, ALIAS_ORDER_FIELDS, ORDER_TIEBREAK};
    let page = page.page()?;
    let order_by = order.sql(ALIAS_ORDER_FIELDS, ALIAS_DEFAULT_ORDER, ORDER_TIEBREAK)?;
    let name_matches = QueryPairs(pairs).text_matches("name");
    let db = state.db().await?;
    let (aliases, total_entries) =
        db::assets::reads::list_aliases(&db, &name_matches, &order_by, page.limit, page.offset).await?;
    Ok(Json(AssetAliasCollectionResponse {
        asset_aliases: aliases.into_iter().map(Into::into).collect(),
        total_entries,
    }))
}

/// `GET /api/v2/assets/aliases/{asset_alias_id}`: one asset alias.
#[utoipa::path(get, path = "/api/v2/assets/aliases/{asset_alias_id}", operation_id = "get_asset_alias", tag = "Asset", params(("asset_alias_id" = i64, Path, description = "The alias's id")), responses((status = 200, body = AssetAliasResponse)))]
pub(crate) async fn get_asset_alias(
    State(state): State<AppState>,
    ApiPath(alias_id): ApiPath<i64>,
) -> Result<Json<AssetAliasResponse>, ApiError> {
    let db = state.db().await?;
    let alias = db::assets::reads::get_alias(&db, alias_id).await?.ok_or_else(|| {
        ApiError::NotFound(format!(
            "the asset alias with id `{alias_id}` was not found; GET /api/v2/assets/aliases lists them"
        ))
    })?;
    Ok(Json(alias.into()))
}

/// Airflow's `MaterializeAssetBody`: the trigger body of the run that materializes the asset.
pub(crate) struct MaterializeAssetBody;

impl utoipa::PartialSchema for MaterializeAssetBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <TriggerRequest as utoipa::PartialSchema>::schema()
    }
}

impl ToSchema for MaterializeAssetBody {}

/// The optional body of a materialize request: absent, empty or `null` is `{}`.
async fn optional_trigger_body(request: Request) -> Result<TriggerBody, ApiError> {
    let (parts, body) = request.into_parts();
    let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), &())
        .await
        .map_err(|rejection| ApiError::with_status(rejection.status(), rejection.body_text()))?;
    let text = bytes.trim_ascii();
    if text.is_empty() || text == b"null" {
        let empty = serde_json::from_str("{}").expect("every trigger body field is optional");
        return Ok(empty);
    }
    let ApiJson(body) =
        ApiJson::<TriggerBody>::from_request(Request::from_parts(parts, Body::from(bytes)), &()).await?;
    Ok(body)
}

/// How many producing DAGs [`materialize_asset`] reads: one is materialized, two are a conflict.
const PRODUCERS_READ: i64 = 2;

/// `POST /api/v2/assets/{asset_id}/materialize`: triggers a run (`asset_materialization`)
/// of the one DAG with a task that produces the asset; 404 when no DAG does,
/// 409 when several do. The optional body is a trigger body (run id, conf, note, …).
#[utoipa::path(post, path = "/api/v2/assets/{asset_id}/materialize", operation_id = "materialize_asset", tag = "Asset", params(AssetPath), request_body(content = Option<MaterializeAssetBody>, description = "The run to create, as for a trigger; optional"), responses((status = 200, body = DagRunResponse), (status = 409, description = "More than one DAG produces the asset, or a run with this run id exists")))]
pub(crate) async fn materialize_asset(
    State(state): State<AppState>,
    Extension(actor): Extension<CurrentUser>,
    ApiPath(asset_id): ApiPath<i64>,
    request: Request,
) -> Result<Json<DagRunResponse>, ApiError> {
    let body = optional_trigger_body(request).await?;
    let producers = {
        let db = state.db().await?;
        if db::assets::reads::find_asset(&db, asset_id).await?.is_none() {
            return Err(asset_not_found(asset_id));
        }
        db::assets::reads::producing_dags(&db, asset_id, PRODUCERS_READ).await?
    };
    let dag_id = match producers.as_slice() {
        [] => {
            return Err(ApiError::NotFound(format!(
                "no DAG materializes the asset with id `{asset_id}`: no task names it in its `outlets`"
            )))
        }
        [dag_id] => dag_id.clone(),
        [first, second, ..] => {
            return Err(ApiError::Conflict(format!(
                "more than one DAG materializes the asset with id `{asset_id}` (`{first}`, `{second}`, …); \
                 trigger the one you mean with POST /api/v2/dags/{{dag_id}}/dagRuns"
            )))
        }
    };
    create_run(state, actor, dag_id, body, "asset_materialization").await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(text: &str) -> QueryPairs {
        QueryPairs(serde_html_form::from_str(text).unwrap())
    }

    #[test]
    fn dag_ids_are_repeated_keys_or_comma_separated_and_only_active_defaults_to_true() {
        let filter = asset_filter_of(&query("dag_ids=a,b&dag_ids=c&dag_ids=")).unwrap();
        assert_eq!(filter.dag_ids.unwrap(), ["a", "b", "c"]);
        assert!(filter.only_active);
        let filter = asset_filter_of(&query("only_active=false")).unwrap();
        assert_eq!(filter.dag_ids, None);
        assert!(!filter.only_active);
    }

    #[test]
    fn a_bad_only_active_is_a_bad_request_naming_it() {
        let error = asset_filter_of(&query("only_active=maybe")).unwrap_err().to_string();
        assert!(error.contains("`only_active`"), "{error}");
    }

    #[test]
    fn extras_have_their_secret_looking_fields_masked() {
        let extra = masked(serde_json::json!({"owner": "data", "conn": {"password": "hunter2"}}));
        assert_eq!(extra["owner"], "data");
        assert_ne!(extra["conn"]["password"], "hunter2");
    }
}
