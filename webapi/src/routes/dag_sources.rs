//! `GET /api/v2/dagSources/{dag_id}`: the text of the file a DAG version was parsed from.

use axum::{
    extract::State,
    http::{header, HeaderMap},
    response::{IntoResponse, Response},
    Json,
};
use gust_shared::db;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{dags::dag_not_found, logs::prefers_text, path_params::DagPath};
use crate::{
    error::ApiError,
    extract::{ApiPath, ApiQuery},
    AppState,
};

/// Airflow's `DAGSourceResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DagSourceResponse {
    content: Option<String>,
    dag_id: String,
    version_number: Option<i32>,
    dag_display_name: String,
}

/// The query of `GET /dagSources/{dag_id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SourceParams {
    /// The version whose source to return (1, 2, … per DAG); the latest when absent.
    version_number: Option<i32>,
}

/// `GET /api/v2/dagSources/{dag_id}`: JSON, or the bare text when `Accept` prefers `text/plain`.
#[utoipa::path(
    get,
    path = "/api/v2/dagSources/{dag_id}",
    operation_id = "get_dag_source",
    tag = "DagSource",
    params(DagPath, SourceParams),
    responses((status = 200, description = "The DAG file's text", content((DagSourceResponse = "application/json"), (String = "text/plain"))))
)]
pub(crate) async fn get_dag_source(
    State(state): State<AppState>,
    ApiPath(dag_id): ApiPath<String>,
    ApiQuery(params): ApiQuery<SourceParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let db = state.db().await?;
    let found = db::dags::version_with_source(&db, &dag_id, params.version_number).await?;
    let Some((version, source)) = found else {
        return Err(match params.version_number {
            Some(number) => ApiError::NotFound(format!(
                "DAG `{dag_id}` has no version {number}; GET /api/v2/dags/{dag_id}/dagVersions lists its versions"
            )),
            None => dag_not_found(&dag_id),
        });
    };
    let Some(content) = source else {
        return Err(ApiError::NotFound(format!(
            "the source of version {} of DAG `{dag_id}` was not kept (it was stored by an older gust); \
             a newer version has it",
            version.version_number
        )));
    };
    if prefers_text(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok())) {
        return Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], content).into_response());
    }
    Ok(Json(DagSourceResponse {
        content: Some(content),
        dag_display_name: dag_id.clone(),
        dag_id,
        version_number: Some(version.version_number),
    })
    .into_response())
}
