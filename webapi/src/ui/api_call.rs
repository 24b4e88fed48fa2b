//! Writes from the UI go through the API's own router, in process, with the
//! caller's token: a trigger from the form is validated exactly as `POST
//! …/dagRuns`, and a viewer's forged form gets the API's 403.

use std::net::SocketAddr;

use axum::{
    body::Body,
    extract::ConnectInfo,
    http::{header, Method, Request},
    Router,
};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use serde_json::Value;
use tower::ServiceExt as _;

use super::{error::UiError, session::Session};
use crate::ApiError;

/// Bytes escaped in a path segment: everything but unreserved characters.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\')
    .add(b'^')
    .add(b'|')
    .add(b'[')
    .add(b']')
    .add(b'+')
    .add(b'&')
    .add(b'=')
    .add(b';')
    .add(b'\'');

/// `/a/b/c` from raw segments, each percent-encoded, so ids with `/`, `?` or `#` stay one segment.
pub(crate) fn path(segments: &[&str]) -> String {
    let mut out = String::new();
    for segment in segments {
        out.push('/');
        out.extend(utf8_percent_encode(segment, SEGMENT));
    }
    out
}

/// A query-string value, percent-encoded.
pub(crate) fn query_value(value: &str) -> String {
    utf8_percent_encode(value, SEGMENT).to_string()
}

/// The API router, as the UI calls it.
#[derive(Clone)]
pub(crate) struct Api(Router);

/// A successful API answer.
pub(crate) struct ApiReply {
    /// Its JSON body (`null` when empty).
    pub(crate) json: Value,
}

impl Api {
    /// Wraps the API router (authorization layer included).
    pub(crate) fn new(router: Router) -> Self {
        Self(router)
    }

    /// `method path` with `body` as JSON, as `session`'s user; an error answer becomes [`UiError::Api`].
    pub(crate) async fn call(
        &self,
        session: &Session,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<ApiReply, UiError> {
        self.call_from(None, Some(&session.token), method, path, body).await
    }

    /// Like [`Self::call`], with the client's address (for the login rate limit) and an optional token.
    pub(crate) async fn call_from(
        &self,
        client: Option<ConnectInfo<SocketAddr>>,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<ApiReply, UiError> {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match body {
            Some(json) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        let mut request = request.body(body).map_err(|e| UiError::BadRequest(format!("bad request path: {e}")))?;
        if let Some(client) = client {
            request.extensions_mut().insert(client);
        }
        let response = self.0.clone().oneshot(request).await.unwrap_or_else(|never| match never {});
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .map_err(|e| UiError::Internal(format!("reading an API answer: {e}")))?;
        let json = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        if status.is_success() {
            return Ok(ApiReply { json });
        }
        let detail = crate::error::detail_text(&json["detail"]).unwrap_or_else(|| status.to_string());
        Err(UiError::Api(ApiError::with_status(status, detail)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded_one_by_one() {
        assert_eq!(
            path(&["dags", "a/b", "runs", "manual__2026-01-01T00:00:00+00:00"]),
            "/dags/a%2Fb/runs/manual__2026-01-01T00:00:00%2B00:00"
        );
        assert_eq!(path(&["x?y#z"]), "/x%3Fy%23z");
    }
}
