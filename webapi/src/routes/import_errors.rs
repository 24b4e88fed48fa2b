//! `/api/v2/importErrors`: DAG files that failed to parse.

use axum::{extract::State, Json};
use chrono::{DateTime, Utc};
use gust_shared::db::{self, import_errors::ImportErrorRow};
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    dags::BUNDLE_NAME,
    pagination::{order_by_param, OrderParams, PageParams},
};
use crate::{
    error::ApiError,
    extract::{ApiPath, ApiQuery},
    AppState,
};

/// Airflow's `ImportErrorResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ImportErrorResponse {
    import_error_id: i64,
    timestamp: DateTime<Utc>,
    filename: String,
    bundle_name: &'static str,
    stack_trace: String,
}

/// Airflow's `ImportErrorCollectionResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ImportErrorCollection {
    import_errors: Vec<ImportErrorResponse>,
    total_entries: i64,
}

impl From<ImportErrorRow> for ImportErrorResponse {
    fn from(row: ImportErrorRow) -> Self {
        Self {
            import_error_id: row.id,
            timestamp: row.timestamp,
            filename: row.filename,
            bundle_name: BUNDLE_NAME,
            stack_trace: row.stacktrace,
        }
    }
}

order_by_param!(ImportErrorOrder, db::import_errors::ORDER_FIELDS);

/// `GET /api/v2/importErrors`
#[utoipa::path(get, path = "/api/v2/importErrors", tag = "Import Error", operation_id = "get_import_errors", params(PageParams, ImportErrorOrder), responses((status = 200, body = ImportErrorCollection)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<PageParams>,
    ApiQuery(order): ApiQuery<OrderParams>,
) -> Result<Json<ImportErrorCollection>, ApiError> {
    let page = page.page()?;
    let order = order.sql(db::import_errors::ORDER_FIELDS, "id ASC", "id")?;
    let db = state.db().await?;
    let (rows, total_entries) = db::import_errors::list(&db, page.limit, page.offset, &order).await?;
    Ok(Json(ImportErrorCollection { import_errors: rows.into_iter().map(Into::into).collect(), total_entries }))
}

/// `GET /api/v2/importErrors/{import_error_id}`
#[utoipa::path(get, path = "/api/v2/importErrors/{import_error_id}", tag = "Import Error", operation_id = "get_import_error", params(("import_error_id" = i64, Path, description = "The import error's id")), responses((status = 200, body = ImportErrorResponse)))]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<ImportErrorResponse>, ApiError> {
    let db = state.db().await?;
    let row = db::import_errors::get(&db, id).await?.ok_or_else(|| {
        ApiError::NotFound(format!(
            "import error {id} not found; it is gone once its file parses (list them with GET /api/v2/importErrors)"
        ))
    })?;
    Ok(Json(row.into()))
}
