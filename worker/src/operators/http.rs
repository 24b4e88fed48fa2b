//! `http`: sends one request (reqwest, rustls) and pushes the response body
//! as the `return_value` XCom (JSON when it parses, a string otherwise).

use std::time::Duration;

use gust_shared::{
    dag::{HttpArgs, OperatorSpec},
    message::TaskMessage,
};
use tokio_util::sync::CancellationToken;

use super::{fail, Operator, OperatorFuture, Outcome, RunLimits};
use crate::log_sink::{LogSink, Stream};

/// Most characters of a response body written to the log.
const LOGGED_BODY_CHARS: usize = 2000;

/// The `http` operator.
pub struct Http;

impl Operator for Http {
    fn run<'a>(
        &'a self,
        task: &'a TaskMessage,
        log: &'a LogSink,
        limits: &'a RunLimits,
        stop: &'a CancellationToken,
    ) -> OperatorFuture<'a> {
        Box::pin(async move {
            let OperatorSpec::Http(args) = &task.operator else {
                return fail(log, "http operator got a message for another operator").await;
            };
            let limit = task.execution_timeout_ms.map(Duration::from_millis);
            let request = request(args, limits, log);
            tokio::select! {
                outcome = request => outcome,
                _ = sleep_or_forever(limit) => {
                    let limit = limit.unwrap_or_default();
                    fail(log, format!("timed out after {limit:?} (execution_timeout)")).await
                }
                _ = stop.cancelled() => {
                    log.line(Stream::Gust, "worker shutdown: request abandoned").await;
                    Outcome::interrupted(None)
                }
            }
        })
    }
}

async fn sleep_or_forever(limit: Option<Duration>) {
    match limit {
        Some(limit) => tokio::time::sleep(limit).await,
        None => std::future::pending().await,
    }
}

/// The request's URL: `url`, or the connection's base URL joined with `endpoint`.
/// A connection's login and password, sent as basic auth.
type BasicAuth = Option<(String, Option<String>)>;

async fn target(args: &HttpArgs, limits: &RunLimits) -> Result<(reqwest::Url, BasicAuth), String> {
    if let Some(url) = &args.url {
        let url = reqwest::Url::parse(url).map_err(|e| format!("url `{url}` is not a valid URL: {e}"))?;
        return Ok((url, None));
    }
    let conn_id = args.http_conn_id.as_deref().unwrap_or_default();
    let conn = limits.connections.resolve(conn_id).await?;
    let host = conn.host.ok_or_else(|| format!("connection `{conn_id}` has no host"))?;
    let scheme = if conn.conn_type == "https" { "https" } else { "http" };
    let port = conn.port.map(|p| format!(":{p}")).unwrap_or_default();
    let base = conn.schema.map(|s| format!("/{}", s.trim_matches('/'))).unwrap_or_default();
    let endpoint = args.endpoint.as_deref().unwrap_or_default().trim_start_matches('/');
    let text = format!("{scheme}://{host}{port}{base}/{endpoint}");
    let url = reqwest::Url::parse(&text)
        .map_err(|e| format!("connection `{conn_id}` with endpoint `{endpoint}` makes no valid URL: {e}"))?;
    Ok((url, conn.login.map(|login| (login, conn.password))))
}

/// The URL as logged: no credentials, no query string (it may hold keys).
fn loggable(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    let had_query = shown.query().is_some();
    shown.set_query(None);
    format!("{shown}{}", if had_query { "?…" } else { "" })
}

async fn request(args: &HttpArgs, limits: &RunLimits, log: &LogSink) -> Outcome {
    let response = match send(args, limits, log).await {
        Ok(response) => response,
        Err(reason) => return fail(log, reason).await,
    };
    if !response.is_expected(args) {
        return fail(
            log,
            format!("{} answered HTTP {}; expected_status is {}", response.request, response.status, wanted(args)),
        )
        .await;
    }
    if response.oversized {
        return fail(
            log,
            format!(
                "the response body is larger than the worker's max_xcom_bytes ({}); fetch large data in the task that uses it, or raise the limit",
                limits.max_xcom_bytes
            ),
        )
        .await;
    }
    let text = response.body;
    let xcom =
        (!text.trim().is_empty()).then(|| serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)));
    Outcome { xcom, ..Outcome::success() }
}

/// What came back from one request (the `http` operator's, or one poke of `http_sensor`).
pub(super) struct Response {
    /// The request as logged: method and URL without credentials or query.
    pub request: String,
    /// The status.
    pub status: reqwest::StatusCode,
    /// The body, read up to one byte more than an XCom may hold.
    pub body: String,
    /// Whether the body was cut at that limit.
    pub oversized: bool,
}

impl Response {
    /// Whether the status is one the task expects (any 2xx unless `expected_status` says).
    pub fn is_expected(&self, args: &HttpArgs) -> bool {
        if args.expected_status.is_empty() {
            self.status.is_success()
        } else {
            args.expected_status.contains(&self.status.as_u16())
        }
    }
}

/// The statuses a task expects, for people.
pub(super) fn wanted(args: &HttpArgs) -> String {
    if args.expected_status.is_empty() {
        "any 2xx".to_string()
    } else {
        args.expected_status.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
    }
}

/// Sends the request the arguments describe and reads its answer, logging
/// the request, the status and the start of the body.
pub(super) async fn send(args: &HttpArgs, limits: &RunLimits, log: &LogSink) -> Result<Response, String> {
    let (url, basic_auth) = target(args, limits).await?;
    let method = reqwest::Method::from_bytes(args.method.as_bytes())
        .map_err(|_| format!("`{}` is not an HTTP method", args.method))?;
    let client = reqwest::Client::builder()
        .user_agent(concat!("gust/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let mut url = url;
    let as_query = matches!(method, reqwest::Method::GET | reqwest::Method::HEAD);
    if let (true, Some(serde_json::Value::Object(fields))) = (as_query, &args.data) {
        add_query(&mut url, fields);
    }
    let shown = loggable(&url);
    let mut builder = client.request(method.clone(), url);
    for (name, value) in &args.headers {
        builder = builder.header(name, value);
    }
    if let Some((login, password)) = basic_auth {
        builder = builder.basic_auth(login, password);
    }
    builder = match &args.data {
        None => builder,
        Some(serde_json::Value::Object(_)) if as_query => builder,
        Some(serde_json::Value::String(text)) => builder.body(text.clone()),
        Some(json) => {
            if !args.headers.keys().any(|h| h.eq_ignore_ascii_case("content-type")) {
                builder = builder.header(reqwest::header::CONTENT_TYPE, "application/json");
            }
            builder.body(json.to_string())
        }
    };
    log.line(Stream::Gust, format!("{method} {shown}")).await;
    let request = format!("{method} {shown}");
    let mut response = builder.send().await.map_err(|e| format!("{request} failed: {}", error_chain(&e)))?;
    let status = response.status();
    log.line(Stream::Gust, format!("HTTP {status}")).await;
    let mut body = Vec::new();
    let mut oversized = false;
    while let Some(chunk) =
        response.chunk().await.map_err(|e| format!("reading the response of {request} failed: {}", error_chain(&e)))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > limits.max_xcom_bytes {
            oversized = true;
            break;
        }
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    if !body.is_empty() {
        let cut: String = body.chars().take(LOGGED_BODY_CHARS).collect();
        let more = if cut.len() < body.len() || oversized { " …(truncated)" } else { "" };
        log.line(Stream::Stdout, format!("{cut}{more}")).await;
    }
    Ok(Response { request, status, body, oversized })
}

/// Appends `data`'s fields to the query string, as Airflow's `HttpHook` does for
/// `GET` (strings as they are, other values as JSON).
fn add_query(url: &mut reqwest::Url, fields: &serde_json::Map<String, serde_json::Value>) {
    let mut pairs = url.query_pairs_mut();
    for (name, value) in fields {
        match value {
            serde_json::Value::String(text) => pairs.append_pair(name, text),
            other => pairs.append_pair(name, &other.to_string()),
        };
    }
}

/// An error with its causes ("error sending request: connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_urls_carry_no_credentials_or_query() {
        let url = reqwest::Url::parse("https://ann:secret@api.example/items?key=abc").unwrap();
        assert_eq!(loggable(&url), "https://api.example/items?…");
    }

    #[test]
    fn data_of_a_get_request_becomes_its_query_string() {
        let mut url = reqwest::Url::parse("http://api.example/items?a=1").unwrap();
        let data = serde_json::json!({"day": "2026-03-04", "n": 2, "q": "a b&c"});
        add_query(&mut url, data.as_object().unwrap());
        assert_eq!(url.as_str(), "http://api.example/items?a=1&day=2026-03-04&n=2&q=a+b%26c");
    }
}
