//! The audit log (Airflow's event log), written in one place: [`record`], a
//! middleware on the API router, records every state-changing request that
//! succeeded, and every login and failed login. The UI's writes go through
//! the same router ([`crate::ui::api_call`]), so they are recorded too.
//!
//! Which requests are recorded, and under which event name, is the table
//! [`action_for`] (a unit test checks that it names every write route the
//! router serves). A record carries the user, the DAG, run and task the
//! request named (from its path, query, body or, for a trigger, its answer)
//! and, in `extra`, the request's other fields with secrets masked
//! ([`masked_extra`]): passwords, tokens and any field whose name looks
//! secret, a connection's `extra` values, and every variable value.
//!
//! A record is written right after the handler's transaction committed, on a
//! connection of its own, before the answer leaves: the handlers own their
//! transactions, and recording here rather than inside each of them keeps
//! the audit log in one place. The price is a window in which the change is
//! committed and the record is not (a crash, or a database failure, which is
//! logged); a failed write never fails the request.

use axum::{
    body::Body,
    extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State},
    http::{header, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use gust_shared::{
    db::{self, event_log::NewEvent},
    secrets::is_sensitive,
};
use serde_json::{Map, Value};

use crate::{auth::CurrentUser, error::ApiError, AppState};

/// What replaces a secret in `extra`.
const MASK: &str = "***";

/// Largest `extra` stored whole; a bigger one keeps only its field names.
const MAX_EXTRA_BYTES: usize = 16 * 1024;

/// Most records one request writes (one per task a clear names).
const MAX_RECORDS: usize = 1000;

/// Largest answer read for the run id and logical date it carries.
const MAX_READ_RESPONSE_BYTES: usize = 256 * 1024;

/// The login routes (`POST`), whose failures are recorded too.
const LOGIN_ROUTES: [&str; 2] = ["/auth/token", "/auth/token/cli"];

/// How a write route is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Action {
    /// The event name (Airflow's where it has one).
    pub(crate) event: &'static str,
    /// A body with `dry_run` (absent counts as true, as in Airflow) changes nothing and is not recorded.
    pub(crate) dry_run_default: bool,
    /// The run id and logical date come from the answer (a trigger makes the run id up).
    pub(crate) from_response: bool,
}

const fn plain(event: &'static str) -> Option<Action> {
    Some(Action { event, dry_run_default: false, from_response: false })
}

/// The event of a successful `method` on the route template `route`, `None`
/// for routes that change nothing (reads, dry runs).
pub(crate) fn action_for(method: &Method, route: &str) -> Option<Action> {
    const RUN: &str = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}";
    const TI: &str = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}";
    let m = method.as_str();
    match (m, route) {
        (_, route) if LOGIN_ROUTES.contains(&route) && *method == Method::POST => plain("login"),
        ("PATCH", "/api/v2/dags/{dag_id}") => plain("patch_dag"),
        ("DELETE", "/api/v2/dags/{dag_id}") => plain("delete_dag"),
        ("POST", "/api/v2/dags/{dag_id}/dagRuns") => {
            Some(Action { event: "trigger_dag_run", dry_run_default: false, from_response: true })
        }
        ("PATCH", RUN) => plain("patch_dag_run"),
        ("DELETE", RUN) => plain("delete_dag_run"),
        ("POST", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/clear") => {
            Some(Action { event: "clear_dag_run", dry_run_default: true, from_response: false })
        }
        ("PATCH", TI) => plain("patch_task_instance"),
        ("PATCH", "/api/v2/dags/{dag_id}/dagRuns") => plain("bulk_dag_runs"),
        ("POST", "/api/v2/dags/{dag_id}/clearDagRuns") => {
            Some(Action { event: "clear_dag_runs", dry_run_default: true, from_response: false })
        }
        ("POST", "/api/v2/dags/{dag_id}/clearPartitions") => {
            Some(Action { event: "clear_dag_run_partitions", dry_run_default: true, from_response: false })
        }
        ("POST", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries") => {
            plain("create_xcom_entry")
        }
        ("PATCH", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries/{xcom_key}") => {
            plain("update_xcom_entry")
        }
        ("DELETE", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries/{xcom_key}") => {
            plain("delete_xcom_entry")
        }
        ("PATCH", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}") => {
            plain("patch_task_instance")
        }
        ("DELETE", TI) => plain("delete_task_instance"),
        ("PATCH", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances") => plain("bulk_task_instances"),
        ("PATCH", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskGroupInstances/{group_id}") => {
            plain("patch_task_group_instances")
        }
        ("POST", "/api/v2/dags/{dag_id}/clearTaskInstances") => {
            Some(Action { event: "clear", dry_run_default: true, from_response: false })
        }
        ("POST", "/api/v2/backfills") => plain("create_backfill"),
        ("PUT", "/api/v2/backfills/{backfill_id}/pause") => plain("pause_backfill"),
        ("PUT", "/api/v2/backfills/{backfill_id}/unpause") => plain("unpause_backfill"),
        ("PUT", "/api/v2/backfills/{backfill_id}/cancel") => plain("cancel_backfill"),
        ("POST", "/api/v2/pools") => plain("post_pool"),
        ("PATCH", "/api/v2/pools/{pool_name}") => plain("patch_pool"),
        ("DELETE", "/api/v2/pools/{pool_name}") => plain("delete_pool"),
        ("POST", "/api/v2/variables") => plain("post_variable"),
        ("PATCH", "/api/v2/variables/{variable_key}") => plain("patch_variable"),
        ("DELETE", "/api/v2/variables/{variable_key}") => plain("delete_variable"),
        ("POST", "/api/v2/connections") => plain("post_connection"),
        ("PATCH", "/api/v2/connections/{connection_id}") => plain("patch_connection"),
        ("DELETE", "/api/v2/connections/{connection_id}") => plain("delete_connection"),
        ("POST", "/api/v2/gust/users") => plain("post_user"),
        ("PATCH", "/api/v2/gust/users/{username}") => plain("patch_user"),
        ("DELETE", "/api/v2/gust/users/{username}") => plain("delete_user"),
        ("PUT", "/api/v2/gust/dagFiles/{file_name}") => {
            Some(Action { event: "put_dag_file", dry_run_default: false, from_response: true })
        }
        ("DELETE", "/api/v2/gust/dagFiles/{file_name}") => plain("delete_dag_file"),
        ("POST", "/api/v2/assets/events") => plain("create_asset_event"),
        ("POST", "/api/v2/assets/{asset_id}/materialize") => {
            Some(Action { event: "materialize_asset", dry_run_default: false, from_response: true })
        }
        ("DELETE", "/api/v2/assets/{asset_id}/queuedEvents") => plain("delete_asset_queued_events"),
        ("DELETE", "/api/v2/dags/{dag_id}/assets/queuedEvents") => plain("delete_dag_asset_queued_events"),
        ("DELETE", "/api/v2/dags/{dag_id}/assets/{asset_id}/queuedEvents") => plain("delete_dag_asset_queued_event"),
        ("PATCH", "/api/v2/dags") => plain("patch_dags"),
        ("POST", "/api/v2/dags/{dag_id}/favorite") => plain("favorite_dag"),
        ("POST", "/api/v2/dags/{dag_id}/unfavorite") => plain("unfavorite_dag"),
        ("PUT", "/api/v2/parseDagFile/{file_token}") => plain("reparse_dag_file"),
        ("PATCH", "/api/v2/pools") => plain("bulk_pools"),
        ("PATCH", "/api/v2/variables") => plain("bulk_variables"),
        ("PATCH", "/api/v2/connections") => plain("bulk_connections"),
        ("POST", "/api/v2/connections/defaults") => plain("create_default_connections"),
        ("POST", "/api/v2/connections/enqueue-test") => plain("enqueue_connection_test"),
        _ => None,
    }
}

/// Write routes that change nothing, so are never recorded.
#[cfg(test)]
const UNRECORDED_WRITES: &[(&str, &str)] = &[
    ("PATCH", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/dry_run"),
    ("PATCH", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}/dry_run"),
    ("PATCH", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskGroupInstances/{group_id}/dry_run"),
    ("POST", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/list"),
    ("POST", "/api/v2/dags/{dag_id}/dagRuns/list"),
    ("POST", "/api/v2/backfills/dry_run"),
    ("POST", "/api/v2/connections/test"),
];

/// The middleware: runs the request and, when it changed something, records it.
pub(crate) async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(route) = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()) else {
        return next.run(request).await;
    };
    let Some(action) = action_for(request.method(), &route) else {
        return next.run(request).await;
    };
    let (mut parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, state.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    let is_json = crate::is_json(&parts.headers);
    let body: Value = if is_json { serde_json::from_slice(&bytes).unwrap_or(Value::Null) } else { Value::Null };
    if action.dry_run_default && body.get("dry_run").and_then(Value::as_bool).unwrap_or(true) {
        return next.run(Request::from_parts(parts, Body::from(bytes))).await;
    }
    let path: Vec<(String, String)> = match RawPathParams::from_request_parts(&mut parts, &state).await {
        Ok(params) => params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        Err(_) => Vec::new(),
    };
    let query: Vec<(String, String)> =
        parts.uri.query().and_then(|q| serde_html_form::from_str(q).ok()).unwrap_or_default();
    let owner = parts.extensions.get::<CurrentUser>().map(|user| user.username.clone());
    let method = parts.method.clone();
    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;

    let status = response.status();
    let request = Recorded { action, method: &method, owner, path: &path, query: &query, body: &body };
    let (response, events) = if status.is_success() {
        let (response, answer) = if action.from_response { read_answer(response).await } else { (response, None) };
        (response, request.events(answer.as_ref()))
    } else if LOGIN_ROUTES.contains(&route.as_str())
        && matches!(status, StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS)
    {
        (response, vec![request.failed_login(status)])
    } else {
        return response;
    };
    write(&state, &events).await;
    response
}

/// The answer's JSON (when small), and the answer rebuilt to be sent on.
async fn read_answer(response: Response) -> (Response, Option<Value>) {
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return (response, None);
    }
    let (parts, body) = response.into_parts();
    match axum::body::to_bytes(body, MAX_READ_RESPONSE_BYTES).await {
        Ok(bytes) => {
            let value = serde_json::from_slice(&bytes).ok();
            (Response::from_parts(parts, Body::from(bytes)), value)
        }
        Err(error) => {
            tracing::error!(%error, "cannot read an answer to record it in the audit log");
            (
                ApiError::with_status(StatusCode::INTERNAL_SERVER_ERROR, "the answer could not be read")
                    .into_response(),
                None,
            )
        }
    }
}

/// Writes `events`; a failure is logged, never the request's.
async fn write(state: &AppState, events: &[NewEvent]) {
    if events.is_empty() {
        return;
    }
    let written = match state.db().await {
        Ok(client) => db::event_log::insert_many(&client, events).await.map_err(|e| e.to_string()),
        Err(error) => Err(error.to_string()),
    };
    if let Err(error) = written {
        tracing::error!(%error, event = %events[0].event, "could not write the audit log record");
    }
}

/// A request being recorded.
struct Recorded<'a> {
    action: Action,
    method: &'a Method,
    owner: Option<String>,
    path: &'a [(String, String)],
    query: &'a [(String, String)],
    body: &'a Value,
}

/// Fields that have columns of their own, so are not repeated in `extra`.
const COLUMNS: [&str; 5] = ["dag_id", "dag_run_id", "run_id", "task_id", "logical_date"];

impl Recorded<'_> {
    /// A text field from the path, else the query, else the body.
    fn text(&self, name: &str) -> Option<String> {
        let pair = |pairs: &[(String, String)]| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        pair(self.path).or_else(|| pair(self.query)).or_else(|| self.body.get(name)?.as_str().map(str::to_string))
    }

    /// `map_index` from the query or the body.
    fn map_index(&self) -> Option<i32> {
        let from_query = self.query.iter().find(|(k, _)| k == "map_index").and_then(|(_, v)| v.parse().ok());
        from_query.or_else(|| self.body.get("map_index")?.as_i64().and_then(|n| i32::try_from(n).ok()))
    }

    /// The tasks the request names: its path's task, or each entry of the
    /// body's `task_ids` (a task id, or `[task_id, map_index]`); none when it names none.
    fn tasks(&self) -> Vec<(String, Option<i32>)> {
        if let Some(task_id) = self.text("task_id") {
            return vec![(task_id, self.map_index())];
        }
        let Some(entries) = self.body.get("task_ids").and_then(Value::as_array) else { return Vec::new() };
        entries
            .iter()
            .filter_map(|entry| match entry {
                Value::String(task_id) => Some((task_id.clone(), None)),
                Value::Array(pair) => Some((
                    pair.first()?.as_str()?.to_string(),
                    pair.get(1).and_then(Value::as_i64).and_then(|n| i32::try_from(n).ok()),
                )),
                _ => None,
            })
            .take(MAX_RECORDS)
            .collect()
    }

    /// The records of a request that succeeded: one per task it names (one when it names none).
    fn events(&self, answer: Option<&Value>) -> Vec<NewEvent> {
        let from_answer = |name: &str| answer.and_then(|a| a.get(name)?.as_str().map(str::to_string));
        let logical_date = self
            .text("logical_date")
            .or_else(|| from_answer("logical_date"))
            .and_then(|text| DateTime::parse_from_rfc3339(&text).ok().map(|t| t.with_timezone(&Utc)));
        let owner = match self.action.event {
            "login" => self.text("username"),
            _ => self.owner.clone(),
        };
        let template = NewEvent {
            event: self.action.event.to_string(),
            owner,
            dag_id: self.text("dag_id").or_else(|| from_answer("dag_id")),
            run_id: self.text("dag_run_id").or_else(|| self.text("run_id")).or_else(|| from_answer("dag_run_id")),
            task_id: None,
            map_index: None,
            try_number: None,
            logical_date,
            extra: Some(self.extra()),
        };
        let tasks = self.tasks();
        if tasks.is_empty() {
            return vec![template];
        }
        tasks
            .into_iter()
            .map(|(task_id, map_index)| NewEvent { task_id: Some(task_id), map_index, ..template.clone() })
            .collect()
    }

    /// The record of a login that failed: the name tried, never the password.
    fn failed_login(&self, status: StatusCode) -> NewEvent {
        let mut extra = self.extra();
        extra["status"] = Value::from(status.as_u16());
        NewEvent {
            event: "login_failed".into(),
            owner: self.text("username"),
            extra: Some(extra),
            ..NewEvent::default()
        }
    }

    /// The query, path and body fields without those that have columns, masked, with the method.
    fn extra(&self) -> Value {
        let mut extra = Map::new();
        for (key, value) in self.query.iter().chain(self.path) {
            if !COLUMNS.contains(&key.as_str()) {
                extra.insert(key.clone(), Value::String(value.clone()));
            }
        }
        if let Value::Object(body) = self.body {
            for (key, value) in body {
                if !COLUMNS.contains(&key.as_str()) {
                    extra.insert(key.clone(), value.clone());
                }
            }
        }
        let mut extra = masked_extra(self.action.event, Value::Object(extra));
        if let Value::Object(fields) = &mut extra {
            fields.insert("method".into(), Value::String(self.method.to_string()));
        }
        extra
    }
}

/// `extra` with its secrets masked: every field whose name looks secret (at
/// any depth), the values of a connection's `extra` (its field names are
/// kept), every variable value, and the password of a login. An `extra` too
/// large to store keeps only its field names.
pub(crate) fn masked_extra(event: &str, mut extra: Value) -> Value {
    mask_sensitive(&mut extra);
    if let Value::Object(fields) = &mut extra {
        if event.ends_with("_connection") {
            if let Some(text) = fields.get_mut("extra") {
                *text = connection_extra_keys(text);
            }
        }
        if event.ends_with("_variable") {
            if let Some(value) = fields.get_mut("value") {
                *value = Value::String(MASK.into());
            }
        }
        if event == "login" {
            fields.remove("password");
        }
    }
    if extra.to_string().len() > MAX_EXTRA_BYTES {
        let names: Vec<Value> =
            extra.as_object().map(|f| f.keys().cloned().map(Value::String).collect()).unwrap_or_default();
        return serde_json::json!({"fields": names, "truncated": format!("over {MAX_EXTRA_BYTES} bytes")});
    }
    extra
}

/// Replaces the value of every field whose name looks secret with [`MASK`], at any depth.
pub(crate) fn mask_sensitive(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields.iter_mut() {
                if is_sensitive(key) && !field.is_null() {
                    *field = Value::String(MASK.into());
                } else {
                    mask_sensitive(field);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_sensitive),
        _ => {}
    }
}

/// A connection's `extra` (JSON text) as its field names with masked values, as Airflow records it.
fn connection_extra_keys(text: &Value) -> Value {
    match text {
        Value::Null => Value::Null,
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(fields)) => {
                Value::Object(fields.into_iter().map(|(k, _)| (k, Value::String(MASK.into()))).collect())
            }
            _ => Value::String("(not a JSON object; left out)".into()),
        },
        _ => Value::String("(not a JSON text; left out)".into()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn recorded<'a>(
        event: &'static str,
        path: &'a [(String, String)],
        query: &'a [(String, String)],
        body: &'a Value,
    ) -> Recorded<'a> {
        let action = Action { event, dry_run_default: false, from_response: false };
        Recorded { action, method: &Method::POST, owner: Some("ana".into()), path, query, body }
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn every_write_route_the_router_serves_is_recorded_or_changes_nothing() {
        let document = crate::openapi_document();
        for (path, item) in &document.paths.paths {
            let writes = [("POST", &item.post), ("PUT", &item.put), ("PATCH", &item.patch), ("DELETE", &item.delete)];
            for (method, operation) in writes {
                if operation.is_none() {
                    continue;
                }
                let recorded = action_for(&Method::from_bytes(method.as_bytes()).unwrap(), path).is_some();
                let unrecorded = UNRECORDED_WRITES.contains(&(method, path.as_str()));
                assert!(
                    recorded != unrecorded,
                    "{method} {path}: recorded {recorded}, listed as changing nothing {unrecorded}"
                );
            }
        }
    }

    #[test]
    fn reads_are_never_recorded() {
        assert_eq!(action_for(&Method::GET, "/api/v2/dags/{dag_id}"), None);
        assert_eq!(action_for(&Method::GET, "/api/v2/eventLogs"), None);
    }

    #[test]
    fn a_clear_is_recorded_once_per_task_it_names_with_its_run() {
        let path = pairs(&[("dag_id", "etl")]);
        let body = json!({"dag_run_id": "r1", "task_ids": ["extract", ["load", 2]], "dry_run": false});
        let events = recorded("clear", &path, &[], &body).events(None);
        let keys: Vec<_> = events.iter().map(|e| (e.task_id.as_deref(), e.map_index)).collect();
        assert_eq!(keys, [(Some("extract"), None), (Some("load"), Some(2))]);
        for event in &events {
            assert_eq!((event.dag_id.as_deref(), event.run_id.as_deref()), (Some("etl"), Some("r1")));
            assert_eq!(event.owner.as_deref(), Some("ana"));
            assert_eq!(event.extra.as_ref().unwrap()["task_ids"], json!(["extract", ["load", 2]]));
            assert!(event.extra.as_ref().unwrap().get("dag_run_id").is_none());
        }
    }

    #[test]
    fn a_trigger_takes_its_run_id_and_logical_date_from_the_answer() {
        let path = pairs(&[("dag_id", "etl")]);
        let body = json!({"conf": {"region": "eu"}});
        let answer = json!({"dag_run_id": "manual__x", "logical_date": "2026-01-02T00:00:00Z"});
        let event = recorded("trigger_dag_run", &path, &[], &body).events(Some(&answer)).remove(0);
        assert_eq!(event.run_id.as_deref(), Some("manual__x"));
        assert_eq!(event.logical_date.unwrap().to_rfc3339(), "2026-01-02T00:00:00+00:00");
        assert_eq!(event.extra.unwrap(), json!({"conf": {"region": "eu"}, "method": "POST"}));
    }

    #[test]
    fn secrets_are_masked_at_any_depth_and_connection_extras_keep_only_their_names() {
        let extra = json!({
            "login": "ana", "password": "hunter2", "conf": {"api_token": "t0k", "nested": [{"client_secret": "s"}]},
            "extra": "{\"region\": \"eu\", \"key_file\": \"/secret/path\"}",
        });
        let masked = masked_extra("post_connection", extra);
        assert_eq!(
            masked,
            json!({"login": "ana", "password": "***", "conf": {"api_token": "***", "nested": [{"client_secret": "***"}]},
                   "extra": {"region": "***", "key_file": "***"}})
        );
        assert_eq!(
            masked_extra("patch_connection", json!({"extra": "not json"}))["extra"],
            "(not a JSON object; left out)"
        );
    }

    #[test]
    fn variable_values_are_always_masked_and_a_login_keeps_no_password() {
        let masked = masked_extra("post_variable", json!({"key": "region", "value": "eu", "description": "d"}));
        assert_eq!(masked, json!({"key": "region", "value": "***", "description": "d"}));
        assert_eq!(masked_extra("login", json!({"username": "ana", "password": "pw"})), json!({"username": "ana"}));
    }

    #[test]
    fn a_failed_login_names_the_user_tried_and_the_status_but_not_the_password() {
        let body = json!({"username": "ana", "password": "wrong-password"});
        let event = recorded("login", &[], &[], &body).failed_login(StatusCode::UNAUTHORIZED);
        assert_eq!((event.event.as_str(), event.owner.as_deref()), ("login_failed", Some("ana")));
        assert!(!event.extra.as_ref().unwrap().to_string().contains("wrong-password"), "{:?}", event.extra);
        assert_eq!(event.extra.unwrap()["status"], 401);
    }

    #[test]
    fn an_oversized_extra_keeps_only_its_field_names() {
        let masked = masked_extra("trigger_dag_run", json!({"conf": {"blob": "x".repeat(MAX_EXTRA_BYTES)}}));
        assert_eq!(masked["fields"], json!(["conf"]));
    }
}
