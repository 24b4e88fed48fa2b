//! `/api/v2/gust/dagFiles`: DAG files pushed over the API, a second source
//! of DAGs beside the DAG folder, so CI can deploy DAGs with a token and no
//! shared volume (`gust dags push`). A push is validated with the
//! scheduler's parser first (422 with its message, nothing stored), then
//! stored as a new version; every scheduler rescans on the commit's NOTIFY.
//! Deleting a file retires its DAG as deleting a folder file does.

use axum::{
    body::Bytes,
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Extension, Json,
};
use gust_shared::{dag::parse_dag_file, db};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::path_params::DagFilePath;
use crate::{auth::CurrentUser, error::ApiError, extract::ApiPath, AppState};

/// Longest file name accepted.
const MAX_NAME_CHARS: usize = 200;

/// One pushed DAG file, without its text.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DagFileResponse {
    file_name: String,
    /// The name its import errors and its DAG's `fileloc` show (`dagFiles:<file_name>`).
    fileloc: String,
    /// The `dag_id` it defines.
    dag_id: Option<String>,
    /// 1 for the first push, one more for each push that changed it.
    version: i32,
    sha256: String,
    updated_by: Option<String>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

/// Every pushed DAG file.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DagFileCollection {
    dag_files: Vec<DagFileResponse>,
    total_entries: i64,
}

fn response(file: db::dag_files::DagFileRow) -> DagFileResponse {
    let dag_id = parse_dag_file(&file.file_name, &file.source).ok().map(|dag| dag.dag_id);
    DagFileResponse {
        fileloc: fileloc(&file.file_name),
        file_name: file.file_name,
        dag_id,
        version: file.version,
        sha256: file.sha256,
        updated_by: file.updated_by,
        updated_at: file.updated_at,
    }
}

/// The name a pushed file has as `fileloc` and in import errors (the scheduler's naming).
fn fileloc(file_name: &str) -> String {
    format!("dagFiles:{file_name}")
}

/// Checks a file name: letters, digits, `_`, `-` and `.`, ending in `.yaml` or `.yml`.
fn check_name(file_name: &str) -> Result<(), ApiError> {
    let charset = file_name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    let yaml = file_name.ends_with(".yaml") || file_name.ends_with(".yml");
    if !charset || !yaml || file_name.starts_with('.') || file_name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::BadRequest(format!(
            "file name `{file_name}` must end in .yaml or .yml, use only letters, digits, `_`, `-` and `.`, \
             not start with `.`, and be at most {MAX_NAME_CHARS} characters"
        )));
    }
    Ok(())
}

/// `GET /api/v2/gust/dagFiles`: every pushed DAG file, by name.
#[utoipa::path(get, path = "/api/v2/gust/dagFiles", tag = "DAG file (gust)", responses((status = 200, body = DagFileCollection)))]
pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<DagFileCollection>, ApiError> {
    let files = db::dag_files::all(&state.db().await?).await?;
    let total_entries = i64::try_from(files.len()).unwrap_or(i64::MAX);
    Ok(Json(DagFileCollection { dag_files: files.into_iter().map(response).collect(), total_entries }))
}

/// `GET /api/v2/gust/dagFiles/{file_name}`: the file's YAML (`application/yaml`).
#[utoipa::path(get, path = "/api/v2/gust/dagFiles/{file_name}", tag = "DAG file (gust)", params(DagFilePath), responses((status = 200, description = "The YAML", content_type = "application/yaml", body = String)))]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    ApiPath(file_name): ApiPath<String>,
) -> Result<Response, ApiError> {
    let file = db::dag_files::get(&state.db().await?, &file_name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no DAG file `{file_name}` was pushed")))?;
    Ok(([(header::CONTENT_TYPE, "application/yaml")], file.source).into_response())
}

/// `PUT /api/v2/gust/dagFiles/{file_name}`: validates and stores the YAML in the body
/// (201 when new, 200 when replaced; 422 with the parser's message when invalid).
#[utoipa::path(put, path = "/api/v2/gust/dagFiles/{file_name}", tag = "DAG file (gust)", params(DagFilePath), request_body(content = String, content_type = "application/yaml", description = "The DAG file"), responses((status = 200, body = DagFileResponse), (status = 201, body = DagFileResponse), (status = 415, description = "The body is not sent as application/yaml or text/plain"), (status = 422, description = "The file is not a valid DAG file; nothing was stored")))]
pub(crate) async fn put(
    State(state): State<AppState>,
    Extension(actor): Extension<CurrentUser>,
    ApiPath(file_name): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<DagFileResponse>), ApiError> {
    check_name(&file_name)?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/yaml");
    let mime = content_type.split(';').next().unwrap_or_default().trim();
    if !matches!(mime, "application/yaml" | "application/x-yaml" | "text/yaml" | "text/plain") {
        return Err(ApiError::Rejected {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            detail: format!("send the DAG file as application/yaml or text/plain, not {mime}"),
        });
    }
    let text =
        String::from_utf8(body.to_vec()).map_err(|_| ApiError::BadRequest("the DAG file is not UTF-8 text".into()))?;
    if text.contains('\0') {
        return Err(ApiError::BadRequest("the DAG file holds a NUL character".into()));
    }
    if let Err(problem) = parse_dag_file(&fileloc(&file_name), &text) {
        return Err(ApiError::invalid(["body"], "value_error", problem.to_string()));
    }
    let sha256 = hex::encode(Sha256::digest(text.as_bytes()));
    let (file, created) = db::dag_files::put(&state.db().await?, &file_name, &text, &sha256, &actor.username).await?;
    tracing::info!(file_name, version = file.version, user = %actor.username, "DAG file pushed");
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(response(file))))
}

/// `DELETE /api/v2/gust/dagFiles/{file_name}`: removes the file; the schedulers retire its DAG.
#[utoipa::path(delete, path = "/api/v2/gust/dagFiles/{file_name}", tag = "DAG file (gust)", params(DagFilePath), responses((status = 204, description = "Deleted")))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    ApiPath(file_name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    if !db::dag_files::delete(&state.db().await?, &file_name).await? {
        return Err(ApiError::NotFound(format!("no DAG file `{file_name}` was pushed")));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pushed_file_name_is_a_plain_yaml_file_name() {
        for ok in ["etl.yaml", "team-a_nightly.v2.yml"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["etl.json", "../etl.yaml", "dir/etl.yaml", ".hidden.yaml", "a b.yaml", ""] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
