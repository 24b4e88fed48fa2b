//! `POST /api/v2/dags/{dag_id}/favorite` and `/unfavorite`: the caller's favorite DAGs,
//! which `GET /api/v2/dags?is_favorite=true` lists.

use axum::{extract::State, http::StatusCode, Extension};
use gust_shared::db;

use super::{dags::dag_not_found, path_params::DagPath};
use crate::{auth::CurrentUser, error::ApiError, extract::ApiPath, AppState};

/// `POST /api/v2/dags/{dag_id}/favorite`: marks the DAG as a favorite of the caller; 204, also when it already was.
#[utoipa::path(post, path = "/api/v2/dags/{dag_id}/favorite", operation_id = "favorite_dag", tag = "DAG", params(DagPath), responses((status = 204, description = "Marked as a favorite")))]
pub(crate) async fn favorite_dag(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    ApiPath(dag_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let db = state.db().await?;
    if !db::favorites::add(&db, &user.username, &dag_id).await? {
        return Err(dag_not_found(&dag_id));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v2/dags/{dag_id}/unfavorite`: removes the DAG from the caller's favorites;
/// 204, or 409 when it was not one of them (as Airflow).
#[utoipa::path(post, path = "/api/v2/dags/{dag_id}/unfavorite", operation_id = "unfavorite_dag", tag = "DAG", params(DagPath), responses((status = 204, description = "No longer a favorite"), (status = 409, description = "The DAG is not a favorite of the caller")))]
pub(crate) async fn unfavorite_dag(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    ApiPath(dag_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let db = state.db().await?;
    if db::favorites::remove(&db, &user.username, &dag_id).await? {
        return Ok(StatusCode::NO_CONTENT);
    }
    super::dags::dag_or_404(&db, &dag_id).await?;
    Err(ApiError::Conflict(format!("DAG `{dag_id}` is not a favorite of user `{}`; nothing to remove", user.username)))
}
