//! `…/taskInstances/{task_id}/logs/{try_number}`: the output of one try, page
//! by page, as Airflow's structured JSON or as plain text.

use super::path_params::TaskInstancePath;
use axum::{
    extract::State,
    http::{header, HeaderMap, HeaderValue},
    response::{IntoResponse, Response},
    Json,
};
use chrono::{DateTime, Utc};
use gust_shared::{
    db::{self, logs::LogLine},
    state::TaskState,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::task_instances::ti_or_404;
use crate::{
    error::ApiError,
    extract::{ApiPath, ApiQuery},
    AppState,
};

/// Lines per page by default.
const PAGE_LINES: i64 = 1000;
/// Lines per page with `full_content=true`.
const FULL_CONTENT_LINES: i64 = 100_000;
/// Response header carrying the continuation token of a text/plain answer.
const CONTINUATION_HEADER: &str = "x-continuation-token";

/// Query of the log route.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct LogParams {
    full_content: Option<bool>,
    /// The `continuation_token` of the previous page.
    #[param(pattern = r"^\s*[0-9]{0,18}\s*$")]
    token: Option<String>,
    map_index: Option<i32>,
}

/// Airflow's `TaskInstancesLogResponse`.
#[derive(Debug, Serialize, ToSchema)]
struct LogResponse {
    content: Vec<LogMessage>,
    continuation_token: Option<String>,
}

/// Airflow's `StructuredLogMessage`.
#[derive(Debug, Serialize, ToSchema)]
struct LogMessage {
    timestamp: DateTime<Utc>,
    event: String,
    level: &'static str,
    logger: String,
}

impl From<LogLine> for LogMessage {
    fn from(line: LogLine) -> Self {
        let level = if line.stream == "stderr" { "error" } else { "info" };
        Self { timestamp: line.ts, event: line.line, level, logger: line.stream }
    }
}

/// `GET …/taskInstances/{task_id}/logs/{try_number}?full_content&token&map_index`
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/logs/{try_number}", tag = "Task Instance", params(TaskInstancePath, ("try_number" = i32, Path, description = "The try, from 1"), LogParams), responses(
    (status = 200, description = "The try's log; `Accept: text/plain` gets plain text with the continuation token in the `x-continuation-token` header", content((LogResponse = "application/json"), (String = "text/plain"))),
))]
pub(crate) async fn get(
    State(state): State<AppState>,
    ApiPath((dag_id, run_id, task_id, try_number)): ApiPath<(String, String, String, i32)>,
    ApiQuery(params): ApiQuery<LogParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let after = parse_token(params.token.as_deref())?;
    let limit = if params.full_content.unwrap_or(false) { FULL_CONTENT_LINES } else { PAGE_LINES };
    let db = state.db().await?;
    let ti = ti_or_404(&db, &dag_id, &run_id, &task_id, params.map_index.unwrap_or(-1)).await?;
    check_try(&ti.task_id, &ti.run_id, ti.try_number, try_number)?;
    let lines = db::logs::read(&db, ti.id, try_number, after, limit).await?;

    let page_full = i64::try_from(lines.len()).unwrap_or(i64::MAX) >= limit;
    let more_may_follow = page_full || try_may_still_log(ti.state, ti.try_number, try_number);
    let token = lines.last().map(|line| line.id.to_string()).or(params.token.filter(|t| !t.trim().is_empty()));

    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    if prefers_text(accept) {
        let mut text = String::new();
        for line in &lines {
            text.push_str(&line.line);
            text.push('\n');
        }
        let mut response = ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response();
        if more_may_follow {
            let value = token.as_deref().unwrap_or("0");
            if let Ok(value) = HeaderValue::from_str(value) {
                response.headers_mut().insert(CONTINUATION_HEADER, value);
            }
        }
        return Ok(response);
    }
    let content = lines.into_iter().map(LogMessage::from).collect();
    Ok(Json(LogResponse { content, continuation_token: token }).into_response())
}

/// The last line id a client has seen; none or empty means "from the start".
fn parse_token(token: Option<&str>) -> Result<i64, ApiError> {
    let token = token.map(str::trim).unwrap_or("");
    if token.is_empty() {
        return Ok(0);
    }
    match token.parse::<i64>() {
        Ok(after) if after >= 0 => Ok(after),
        _ => Err(ApiError::BadRequest(format!(
            "`token` `{token}` is not a continuation token from this server; omit it to read from the start"
        ))),
    }
}

/// 404 unless try `try_number` exists for task `task` whose current try is `current_try`.
fn check_try(task: &str, run_id: &str, current_try: i32, try_number: i32) -> Result<(), ApiError> {
    if (1..=current_try).contains(&try_number) {
        return Ok(());
    }
    let existing = match current_try {
        0 => format!("task `{task}` has not run yet in DAG run `{run_id}`, so it has no logs"),
        1 => format!("task `{task}` has only try 1"),
        n => format!("task `{task}` has tries 1 to {n}"),
    };
    Err(ApiError::NotFound(format!("no try {try_number}: {existing}")))
}

/// Whether the try may still write lines (it is the current try and is not finished).
fn try_may_still_log(state: TaskState, current_try: i32, try_number: i32) -> bool {
    try_number == current_try && matches!(state, TaskState::Queued | TaskState::Running)
}

/// True when the `Accept` header ranks `text/plain` above `application/json`.
pub(crate) fn prefers_text(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return false };
    quality(accept, "text/plain") > quality(accept, "application/json")
}

/// The quality the most specific matching range of `accept` gives `media`.
fn quality(accept: &str, media: &str) -> f32 {
    let kind_wildcard = format!("{}/*", media.split('/').next().unwrap_or(""));
    let mut best: Option<(u8, f32)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let specificity = if name == media {
            3
        } else if name == kind_wildcard {
            2
        } else if name == "*/*" {
            1
        } else {
            continue;
        };
        let q = parts
            .filter_map(|param| param.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if best.is_none_or(|(seen, _)| specificity > seen) {
            best = Some((specificity, q));
        }
    }
    best.map_or(0.0, |(_, q)| q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_the_default_and_text_plain_wins_only_when_preferred() {
        assert!(!prefers_text(None));
        assert!(!prefers_text(Some("*/*")));
        assert!(!prefers_text(Some("application/json")));
        assert!(!prefers_text(Some("application/json, text/plain")));
        assert!(!prefers_text(Some("text/plain;q=0.5, application/json")));
        assert!(prefers_text(Some("text/plain")));
        assert!(prefers_text(Some("text/*")));
        assert!(prefers_text(Some("text/plain, */*;q=0.8")));
        assert!(prefers_text(Some("application/json;q=0.2, text/plain;q=0.9")));
    }

    #[test]
    fn tokens_are_line_ids_and_garbage_is_a_bad_request() {
        assert_eq!(parse_token(None).unwrap(), 0);
        assert_eq!(parse_token(Some("")).unwrap(), 0);
        assert_eq!(parse_token(Some("42")).unwrap(), 42);
        assert!(matches!(parse_token(Some("abc")), Err(ApiError::BadRequest(_))));
        assert!(matches!(parse_token(Some("-1")), Err(ApiError::BadRequest(_))));
    }

    #[test]
    fn only_tries_that_happened_have_logs() {
        assert!(check_try("extract", "r1", 2, 1).is_ok());
        assert!(check_try("extract", "r1", 2, 2).is_ok());
        let too_high = check_try("extract", "r1", 2, 3).unwrap_err().to_string();
        assert!(too_high.contains("tries 1 to 2"), "{too_high}");
        assert!(check_try("extract", "r1", 2, 0).is_err());
        let only = check_try("extract", "r1", 1, 2).unwrap_err().to_string();
        assert!(only.contains("only try 1"), "{only}");
        let never = check_try("extract", "r1", 0, 1).unwrap_err().to_string();
        assert!(never.contains("has not run yet"), "{never}");
    }

    #[test]
    fn only_the_current_unfinished_try_may_still_log() {
        assert!(try_may_still_log(TaskState::Running, 2, 2));
        assert!(try_may_still_log(TaskState::Queued, 2, 2));
        assert!(!try_may_still_log(TaskState::Running, 2, 1));
        assert!(!try_may_still_log(TaskState::Success, 2, 2));
    }

    #[test]
    fn stderr_lines_are_errors() {
        let line = LogLine { id: 1, ts: DateTime::<Utc>::UNIX_EPOCH, stream: "stderr".into(), line: "boom".into() };
        let message = LogMessage::from(line);
        assert_eq!((message.level, message.logger.as_str(), message.event.as_str()), ("error", "stderr", "boom"));
    }
}
