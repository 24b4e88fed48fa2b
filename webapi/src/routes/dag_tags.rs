//! `GET /api/v2/dagTags`: the tags of the DAGs.

use axum::{extract::State, Json};
use gust_shared::db;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::{
    list_query::{Filters, QueryPairs},
    pagination::{order_by_param, OrderParams, PageParams},
};
use crate::{error::ApiError, extract::ApiQuery, AppState};

/// Airflow's `DAGTagCollectionResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DagTagCollection {
    tags: Vec<String>,
    total_entries: i64,
}

/// The filters of `GET /dagTags`, for the OpenAPI document (the handler reads the raw query).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // never constructed: it exists for its `IntoParams` impl
pub(crate) struct TagFilters {
    /// Case-insensitive substring of the tag; `|` separates alternatives.
    tag_name_pattern: Option<String>,
    /// Case-sensitive prefix of the tag; `|` separates alternatives.
    tag_name_prefix_pattern: Option<String>,
}

order_by_param!(TagOrder, db::dags::TAG_ORDER_FIELDS);

/// `GET /api/v2/dagTags`: a page of the distinct tags of the DAGs whose file is still there, by name.
#[utoipa::path(get, path = "/api/v2/dagTags", operation_id = "get_dag_tags", tag = "DAG", params(PageParams, TagOrder, Filters<TagFilters>), responses((status = 200, body = DagTagCollection)))]
pub(crate) async fn get_dag_tags(
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<PageParams>,
    ApiQuery(order): ApiQuery<OrderParams>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> Result<Json<DagTagCollection>, ApiError> {
    let page = page.page()?;
    let order_by = order.sql(db::dags::TAG_ORDER_FIELDS, "name ASC", "name ASC")?;
    let matches = QueryPairs(pairs).text_matches("tag_name");
    let db = state.db().await?;
    let (tags, total_entries) = db::dags::tag_page(&db, &matches, &order_by, page.limit, page.offset).await?;
    Ok(Json(DagTagCollection { tags, total_entries }))
}
