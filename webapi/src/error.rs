//! The API's one error type and its JSON shape,
//! `{"status": 404, "title": "Not Found", "detail": "DAG `x` not found"}`;
//! a 422 carries FastAPI's list instead of the string,
//! `{"status": 422, …, "detail": [{"loc": ["body", "slots"], "msg": "…", "type": "missing"}]}`.

use axum::{
    extract::rejection::{JsonRejection, PathRejection},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use gust_shared::db::{backfills::CreateBackfillError, runs::CreateRunError, DbError};
use serde::Serialize;
use utoipa::ToSchema;

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
    /// Input that does not fit the operation's schema (422 with FastAPI's `detail` list).
    #[error("{}", join_messages(.0))]
    Invalid(Vec<FieldError>),
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

/// One problem with a request's input, FastAPI's (pydantic's) `ValidationError`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = ValidationError)]
pub struct FieldError {
    /// Where: `body`, `query` or `path`, then field names and array indexes.
    pub loc: Vec<Loc>,
    /// What is wrong and how to fix it.
    pub msg: String,
    /// The kind of problem, as pydantic names it: `missing`, `extra_forbidden`, `int_parsing`, `json_invalid`, …
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The value that was refused, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<serde_json::Value>,
}

/// One step of a [`FieldError`]'s location: a field name or an array index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Loc {
    /// A place (`body`, `query`, `path`) or a field name.
    Name(String),
    /// An array index, or a byte offset in a body that is not JSON.
    Index(usize),
}

impl From<&str> for Loc {
    fn from(name: &str) -> Self {
        Loc::Name(name.to_string())
    }
}

impl From<String> for Loc {
    fn from(name: String) -> Self {
        Loc::Name(name)
    }
}

impl From<usize> for Loc {
    fn from(index: usize) -> Self {
        Loc::Index(index)
    }
}

impl FieldError {
    /// A problem at `loc` (e.g. `["body", "slots"]`) of pydantic kind `kind`.
    pub fn new<L: Into<Loc>>(loc: impl IntoIterator<Item = L>, kind: &'static str, msg: impl Into<String>) -> Self {
        Self { loc: loc.into_iter().map(Into::into).collect(), msg: msg.into(), kind, input: None }
    }

    /// The same problem, naming the value that was refused.
    pub fn with_input(mut self, input: impl Into<serde_json::Value>) -> Self {
        self.input = Some(input.into());
        self
    }
}

impl ApiError {
    /// A 422 for one problem with the input; see [`FieldError::new`].
    pub fn invalid<L: Into<Loc>>(loc: impl IntoIterator<Item = L>, kind: &'static str, msg: impl Into<String>) -> Self {
        ApiError::Invalid(vec![FieldError::new(loc, kind, msg)])
    }
}

/// The messages of `errors` in one line, for logs, the UI and the string form of the error.
fn join_messages(errors: &[FieldError]) -> String {
    errors.iter().map(|error| error.msg.as_str()).collect::<Vec<_>>().join("; ")
}

/// The readable text of an error answer's `detail`: the string itself, or
/// the messages of a 422's list joined; `None` when it has neither.
pub fn detail_text(detail: &serde_json::Value) -> Option<String> {
    match detail {
        serde_json::Value::String(text) => Some(text.clone()),
        serde_json::Value::Array(errors) => {
            let messages: Vec<&str> = errors.iter().filter_map(|error| error["msg"].as_str()).collect();
            (!messages.is_empty()).then(|| messages.join("; "))
        }
        _ => None,
    }
}

/// The `detail` of an error body: a string, or for a 422 the list of problems.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Detail {
    Text(String),
    Fields(Vec<FieldError>),
}

/// The JSON body of every error response.
#[derive(Debug, Serialize)]
struct ErrorBody {
    status: u16,
    title: &'static str,
    detail: Detail,
}

const UNAVAILABLE_DETAIL: &str = "the metadata database is unavailable; try again shortly";
const INTERNAL_DETAIL: &str = "internal server error; the gust-webapi log has the details";

impl ApiError {
    /// An error with an explicit status (used for framework rejections and non-JSON error responses).
    pub fn with_status(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError::Rejected { status, detail: detail.into() }
    }

    /// The problems of a 422: its own list, or one without a location for a 422 made from text.
    fn field_errors(&self) -> Option<Vec<FieldError>> {
        match self {
            ApiError::Invalid(errors) => Some(errors.clone()),
            ApiError::Rejected { status: StatusCode::UNPROCESSABLE_ENTITY, detail } => {
                Some(vec![FieldError::new(Vec::<Loc>::new(), "value_error", detail.clone())])
            }
            _ => None,
        }
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
            ApiError::Invalid(errors) => (StatusCode::UNPROCESSABLE_ENTITY, join_messages(&errors)),
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
        let fields = self.field_errors();
        let (status, text) = self.status_and_detail();
        let title = status.canonical_reason().unwrap_or("Error");
        let detail = fields.map_or(Detail::Text(text), Detail::Fields);
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
