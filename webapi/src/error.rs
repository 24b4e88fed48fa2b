//! The API's one error type and its JSON shape,
//! `{"status": 404, "title": "Not Found", "detail": "DAG `x` not found"}`.

use axum::{
    extract::rejection::{JsonRejection, PathRejection},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use gust_shared::db::{backfills::CreateBackfillError, runs::CreateRunError, DbError};
use serde::Serialize;

/// Why a request failed; every handler and extractor error ends up here.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or asks for something impossible (400).
    #[error("{0}")]
    BadRequest(String),
    /// The named resource does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with what already exists (409).
    #[error("{0}")]
    Conflict(String),
    /// No valid bearer token, or a failed login (401 with `WWW-Authenticate: Bearer`).
    #[error("{0}")]
    Unauthorized(String),
    /// The token's role is too weak for the request (403).
    #[error("{0}")]
    Forbidden(String),
    /// Too many failed logins; try again after `retry_after_secs` (429 with `Retry-After`).
    #[error("{detail}")]
    TooManyRequests {
        /// What happened, for the client.
        detail: String,
        /// Seconds until another attempt is accepted.
        retry_after_secs: u64,
    },
    /// A request the framework rejected (bad JSON, path, query, size, method), with its own status.
    #[error("{detail}")]
    Rejected {
        /// The HTTP status to answer with.
        status: StatusCode,
        /// What was wrong, for the client.
        detail: String,
    },
    /// The database did not answer in time (503).
    #[error("{0}")]
    Unavailable(String),
    /// A database operation failed (503 when the database is unreachable, else 500).
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The JSON body of every error response.
#[derive(Debug, Serialize)]
struct ErrorBody {
    status: u16,
    title: &'static str,
    detail: String,
}

const UNAVAILABLE_DETAIL: &str = "the metadata database is unavailable; try again shortly";
const INTERNAL_DETAIL: &str = "internal server error; the gust-webapi log has the details";

impl ApiError {
    /// An error with an explicit status (used for framework rejections and non-JSON error responses).
    pub fn with_status(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError::Rejected { status, detail: detail.into() }
    }

    /// The status and client-facing detail; server-side failures are logged here, not exposed.
    pub(crate) fn status_and_detail(self) -> (StatusCode, String) {
        match self {
            ApiError::BadRequest(detail) => (StatusCode::BAD_REQUEST, detail),
            ApiError::NotFound(detail) => (StatusCode::NOT_FOUND, detail),
            ApiError::Conflict(detail) => (StatusCode::CONFLICT, detail),
            ApiError::Unauthorized(detail) => (StatusCode::UNAUTHORIZED, detail),
            ApiError::Forbidden(detail) => (StatusCode::FORBIDDEN, detail),
            ApiError::TooManyRequests { detail, .. } => (StatusCode::TOO_MANY_REQUESTS, detail),
            ApiError::Rejected { status, detail } => (status, detail),
            ApiError::Unavailable(detail) => {
                tracing::warn!(%detail, "database unavailable");
                (StatusCode::SERVICE_UNAVAILABLE, detail)
            }
            ApiError::Db(error) if db_is_unavailable(&error) => {
                tracing::warn!(%error, "database unavailable");
                (StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE_DETAIL.into())
            }
            ApiError::Db(error) => {
                tracing::error!(%error, "database error");
                (StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_DETAIL.into())
            }
        }
    }
}

/// True when the failure is about reaching the database rather than about the query.
fn db_is_unavailable(error: &DbError) -> bool {
    match error {
        DbError::Unreachable { .. } | DbError::Pool(_) | DbError::NotMigrated { .. } => true,
        DbError::Query(e) => e.is_closed(),
        DbError::BadUrl { .. } | DbError::Migration(_) | DbError::Corrupt(_) => false,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let header = match &self {
            ApiError::Unauthorized(_) => Some((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))),
            ApiError::TooManyRequests { retry_after_secs, .. } => {
                Some((header::RETRY_AFTER, HeaderValue::from(*retry_after_secs)))
            }
            _ => None,
        };
        let (status, detail) = self.status_and_detail();
        let title = status.canonical_reason().unwrap_or("Error");
        let mut response = (status, Json(ErrorBody { status: status.as_u16(), title, detail })).into_response();
        if let Some((name, value)) = header {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

impl From<CreateRunError> for ApiError {
    fn from(error: CreateRunError) -> Self {
        match error {
            duplicate @ CreateRunError::Duplicate { .. } => ApiError::Conflict(duplicate.to_string()),
            CreateRunError::Db(db) => ApiError::Db(db),
        }
    }
}

impl From<CreateBackfillError> for ApiError {
    fn from(error: CreateBackfillError) -> Self {
        match error {
            active @ CreateBackfillError::AlreadyActive { .. } => ApiError::Conflict(active.to_string()),
            CreateBackfillError::Db(db) => ApiError::Db(db),
        }
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        ApiError::Db(DbError::Pool(error))
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(error: tokio_postgres::Error) -> Self {
        ApiError::Db(DbError::Query(error))
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        ApiError::with_status(rejection.status(), rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::with_status(rejection.status(), rejection.body_text())
    }
}

/// Why the HTTP server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum WebapiError {
    /// Accepting or serving connections failed.
    #[error("the HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
    /// The certificate or key for HTTPS cannot be used.
    #[error("cannot serve HTTPS with GUST__WEBAPI__TLS_CERT {cert} and GUST__WEBAPI__TLS_KEY {key}: {cause}; point both at readable PEM files of one certificate and its key")]
    Tls {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
        /// What loading them said.
        cause: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_their_http_status() {
        let status = |e: ApiError| e.status_and_detail().0;
        assert_eq!(status(ApiError::BadRequest("x".into())), StatusCode::BAD_REQUEST);
        assert_eq!(status(ApiError::NotFound("x".into())), StatusCode::NOT_FOUND);
        assert_eq!(status(ApiError::Conflict("x".into())), StatusCode::CONFLICT);
        assert_eq!(status(ApiError::Unauthorized("x".into())), StatusCode::UNAUTHORIZED);
        assert_eq!(status(ApiError::Forbidden("x".into())), StatusCode::FORBIDDEN);
        assert_eq!(status(ApiError::Unavailable("x".into())), StatusCode::SERVICE_UNAVAILABLE);
        let unreachable = DbError::Unreachable { url: "postgres://h/db".into(), cause: "refused".into() };
        assert_eq!(status(ApiError::Db(unreachable)), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status(ApiError::Db(DbError::Corrupt("bad".into()))), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let (_, detail) = ApiError::Db(DbError::Corrupt("secret table layout".into())).status_and_detail();
        assert!(!detail.contains("secret"), "{detail}");
    }

    #[test]
    fn a_duplicate_run_is_a_conflict_naming_the_dag() {
        let error = ApiError::from(CreateRunError::Duplicate { dag_id: "etl".into(), what: "run_id" });
        let (status, detail) = error.status_and_detail();
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(detail.contains("etl") && detail.contains("run_id"), "{detail}");
    }
}
