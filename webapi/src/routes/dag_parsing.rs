//! `PUT /api/v2/parseDagFile/{file_token}`: asks the schedulers to parse a DAG file again now.

use axum::{extract::State, http::StatusCode, Json};
use gust_shared::db::{self, signals::Signal};
use utoipa::IntoParams;

use crate::{error::ApiError, extract::ApiPath, AppState};

/// `{file_token}`: a DAG file, as its DAGs' `file_token` names it.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // never constructed: it exists for its `IntoParams` impl
pub(crate) struct FileTokenPath {
    /// The `file_token` of a DAG (`GET /api/v2/dags/{dag_id}`).
    file_token: String,
}

/// The `fileloc` a `file_token` stands for (its hex encoding), if it is one.
fn fileloc_of(file_token: &str) -> Option<String> {
    hex::decode(file_token).ok().and_then(|bytes| String::from_utf8(bytes).ok())
}

/// `PUT /api/v2/parseDagFile/{file_token}`: every scheduler parses the file again on
/// its next wake-up, changed or not; 201 with `null`, as Airflow.
#[utoipa::path(put, path = "/api/v2/parseDagFile/{file_token}", operation_id = "reparse_dag_file", tag = "DAG Parsing", params(FileTokenPath), responses((status = 201, description = "The schedulers were asked to parse the file", body = Option<String>)))]
pub(crate) async fn reparse_dag_file(
    State(state): State<AppState>,
    ApiPath(file_token): ApiPath<String>,
) -> Result<(StatusCode, Json<()>), ApiError> {
    let not_found = || {
        ApiError::NotFound(format!(
            "no DAG file has the token `{file_token}`; a DAG's `file_token` (GET /api/v2/dags/{{dag_id}}) names its file"
        ))
    };
    let fileloc = fileloc_of(&file_token).ok_or_else(not_found)?;
    let db = state.db().await?;
    if !db::dags::file_is_known(&db, &fileloc).await? {
        return Err(not_found());
    }
    Signal::ReparseFile { fileloc: fileloc.clone() }.send(&db).await?;
    tracing::info!(%fileloc, "DAG file reparse requested through the API");
    Ok((StatusCode::CREATED, Json(())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_token_is_the_hex_of_the_fileloc() {
        assert_eq!(fileloc_of(&hex::encode("/dags/etl.yaml")).as_deref(), Some("/dags/etl.yaml"));
        assert_eq!(fileloc_of("zz"), None);
        assert_eq!(fileloc_of("ff"), None);
    }
}
