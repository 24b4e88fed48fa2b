//! `GET /api/v2/dagWarnings`: problems found in DAG definitions, in Airflow's
//! shape. gust reports Airflow's `non-existent pool`: an active DAG whose tasks
//! name a pool that does not exist (they would wait in `scheduled` until it is created).

use axum::{extract::State, Json};
use chrono::{DateTime, Utc};
use gust_shared::db::{self, dag_warnings::MissingPools};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    list_query::string_choice,
    pagination::{order_by_param, OrderParams, PageParams},
};
use crate::{error::ApiError, extract::ApiQuery, AppState};

/// Airflow's `DagWarningType` values.
const WARNING_TYPES: [&str; 3] = ["asset conflict", "non-existent pool", "runtime varying value"];

string_choice!(DagWarningType, WARNING_TYPES);

/// Airflow's `DAGWarningResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DagWarningResponse {
    dag_id: String,
    #[schema(value_type = DagWarningType)]
    warning_type: &'static str,
    message: String,
    timestamp: DateTime<Utc>,
    dag_display_name: String,
}

/// Airflow's `DAGWarningCollectionResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DagWarningCollection {
    dag_warnings: Vec<DagWarningResponse>,
    total_entries: i64,
}

/// The filters of `GET /dagWarnings`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct WarningFilters {
    /// Only the warnings of this DAG.
    dag_id: Option<String>,
    /// Only warnings of this type.
    #[param(value_type = Option<DagWarningType>, inline)]
    warning_type: Option<String>,
}

/// The fields the list may be ordered by.
const ORDER_FIELDS: &[(&str, &str)] =
    &[("dag_id", "dag_id"), ("warning_type", "warning_type"), ("message", "message"), ("timestamp", "timestamp")];

order_by_param!(WarningOrder, ORDER_FIELDS);

impl From<MissingPools> for DagWarningResponse {
    fn from(missing: MissingPools) -> Self {
        let pools: Vec<String> = missing.pools.iter().map(|pool| format!("'{pool}'")).collect();
        Self {
            message: format!(
                "Dag '{}' references non-existent pools: [{}]; create them (POST /api/v2/pools) or change the tasks' pool",
                missing.dag_id,
                pools.join(", ")
            ),
            dag_display_name: missing.dag_id.clone(),
            dag_id: missing.dag_id,
            warning_type: "non-existent pool",
            timestamp: missing.parsed_at,
        }
    }
}

/// Sorts `warnings` by the `ORDER BY`-style `order` ([`ORDER_FIELDS`] columns with `ASC`/`DESC`).
fn sort(warnings: &mut [DagWarningResponse], order: &str) {
    let keys: Vec<(&str, bool)> = order
        .split(", ")
        .filter_map(|key| key.split_once(' '))
        .map(|(column, direction)| (column, direction == "DESC"))
        .collect();
    warnings.sort_by(|a, b| {
        keys.iter()
            .map(|(column, descending)| {
                let ordering = match *column {
                    "warning_type" => a.warning_type.cmp(b.warning_type),
                    "message" => a.message.cmp(&b.message),
                    "timestamp" => a.timestamp.cmp(&b.timestamp),
                    _ => a.dag_id.cmp(&b.dag_id),
                };
                if *descending {
                    ordering.reverse()
                } else {
                    ordering
                }
            })
            .find(|ordering| ordering.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
}

/// `GET /api/v2/dagWarnings`
#[utoipa::path(get, path = "/api/v2/dagWarnings", operation_id = "list_dag_warnings", tag = "DagWarning", params(WarningFilters, PageParams, WarningOrder), responses((status = 200, body = DagWarningCollection)))]
pub(crate) async fn list_dag_warnings(
    State(state): State<AppState>,
    ApiQuery(filters): ApiQuery<WarningFilters>,
    ApiQuery(page): ApiQuery<PageParams>,
    ApiQuery(order): ApiQuery<OrderParams>,
) -> Result<Json<DagWarningCollection>, ApiError> {
    let page = page.page()?;
    let order = order.sql(ORDER_FIELDS, "dag_id ASC", "dag_id ASC")?;
    let warning_type = filters.warning_type.filter(|t| !t.is_empty());
    if let Some(other) = warning_type.as_deref().filter(|t| !WARNING_TYPES.contains(t)) {
        return Err(ApiError::invalid(
            ["query", "warning_type"],
            "enum",
            format!(
                "`warning_type` must be one of {}, got `{other}`",
                WARNING_TYPES.map(|t| format!("`{t}`")).join(", ")
            ),
        ));
    }
    let db = state.db().await?;
    let mut warnings: Vec<DagWarningResponse> = db::dag_warnings::missing_pools(&db)
        .await?
        .into_iter()
        .map(DagWarningResponse::from)
        .filter(|w| filters.dag_id.as_deref().is_none_or(|dag_id| dag_id.is_empty() || w.dag_id == dag_id))
        .filter(|w| warning_type.as_deref().is_none_or(|t| w.warning_type == t))
        .collect();
    sort(&mut warnings, &order);
    let total_entries = i64::try_from(warnings.len()).unwrap_or(i64::MAX);
    Ok(Json(DagWarningCollection { dag_warnings: page.slice(warnings), total_entries }))
}
