//! The fixture of the `api` test binary: a gust-webapi router over its own
//! throw-away PostgreSQL database (no scheduler, no workers),
//! driven in process with `tower::ServiceExt::oneshot`.

use axum::{
    body::{Body, Bytes},
    http::{header, HeaderMap, Method, Request, StatusCode},
    Router,
};
use deadpool_postgres::Pool;
use gust_shared::db;
use gust_webapi::{
    auth::{self, Auth, Role},
    AppState,
};
use http_body_util::BodyExt;
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

use crate::database::{self, TestDatabase};

/// A DAG with two tasks, as a DAG file would hold it.
pub const ETL_DAG: &str = r#"
dag_id: etl
description: nightly load
schedule: "@daily"
start_date: 2026-01-01
tags: [team-a]
tasks:
  - id: extract
    operator: bash
    command: echo extract
  - id: load
    operator: noop
    depends_on: [extract]
"#;

/// The admin user every [`TestApi`] has ([`crate::ADMIN_USER`]), and whose
/// token it sends unless told otherwise; its password is [`ADMIN_PASSWORD`].
pub use crate::{ADMIN_PASSWORD, ADMIN_USER};

/// The router under test, its pool, and the database it drops when dropped.
pub struct TestApi {
    /// The full router, middleware included.
    pub router: Router,
    /// A pool on the test database, to arrange state.
    pub pool: Pool,
    /// The token keys the router checks against.
    pub auth: Arc<Auth>,
    /// The admin's token, sent by [`Self::send`] when a request has no `Authorization` header.
    pub admin_token: String,
    database: TestDatabase,
}

/// One response, read whole.
pub struct Reply {
    /// Its status.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON; panics with the body text when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts the API's JSON error shape with `status`; returns the detail
    /// (for a 422, FastAPI's list of problems as `loc: msg [type]` lines).
    pub fn assert_error(&self, status: StatusCode) -> String {
        assert_eq!(self.status, status, "body: {}", self.text());
        let content_type = self.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        assert!(content_type.starts_with("application/json"), "content-type {content_type:?}, body {}", self.text());
        let json = self.json();
        assert_eq!(json["status"], status.as_u16(), "{json}");
        assert_eq!(json["title"], status.canonical_reason().unwrap(), "{json}");
        if status == StatusCode::UNPROCESSABLE_ENTITY {
            return validation_problems(&json);
        }
        let detail = json["detail"].as_str().unwrap_or_else(|| panic!("no string detail in {json}"));
        assert!(!detail.is_empty(), "{json}");
        detail.to_string()
    }
}

/// The problems of a 422 in FastAPI's shape, `{"detail": [{"loc", "msg", "type"}]}`,
/// one `loc: msg [type]` line each (`body.slots: missing field `slots` [missing]`).
pub fn validation_problems(json: &Value) -> String {
    let problems = json["detail"].as_array().unwrap_or_else(|| panic!("a 422's detail must be a list: {json}"));
    assert!(!problems.is_empty(), "{json}");
    let lines: Vec<String> = problems
        .iter()
        .map(|problem| {
            let loc = problem["loc"].as_array().unwrap_or_else(|| panic!("no `loc` list in {problem}"));
            let steps: Vec<String> = loc
                .iter()
                .map(|step| match step {
                    Value::String(name) => name.clone(),
                    Value::Number(index) if index.is_u64() => index.to_string(),
                    other => panic!("`loc` steps are names or indexes, not {other}: {problem}"),
                })
                .collect();
            let msg = problem["msg"].as_str().filter(|msg| !msg.is_empty());
            let kind = problem["type"].as_str().filter(|kind| !kind.is_empty());
            let (msg, kind) = msg.zip(kind).unwrap_or_else(|| panic!("no `msg` or `type` in {problem}"));
            format!("{}: {msg} [{kind}]", steps.join("."))
        })
        .collect();
    lines.join("\n")
}

impl TestApi {
    /// Creates and migrates a database of its own ([`crate::database::isolated`]), and builds the router over it.
    pub async fn start() -> Self {
        Self::start_with_body_limit(1024 * 1024).await
    }

    /// Like [`Self::start`], with a request body limit.
    pub async fn start_with_body_limit(max_body_bytes: usize) -> Self {
        Self::start_with(|state| state.with_max_body_bytes(max_body_bytes)).await
    }

    /// Like [`Self::start`], with the state adjusted by `configure` (threshold, broker, …).
    pub async fn start_with(configure: impl FnOnce(AppState) -> AppState) -> Self {
        let database = database::isolated().await;
        let pool = database.pool.clone();
        let state = configure(AppState::new(pool.clone()).with_max_body_bytes(1024 * 1024));
        auth::create_or_update_user(&pool, ADMIN_USER, ADMIN_PASSWORD, Role::Admin).await.expect("create the admin");
        let admin_token = state.auth.issue(ADMIN_USER, Role::Admin).expect("sign the admin's token");
        Self { auth: state.auth.clone(), router: gust_webapi::router(state), pool, admin_token, database }
    }

    /// The URL of the test database (for child processes).
    pub fn database_url(&self) -> &str {
        &self.database.url
    }

    /// Creates a user `<role>-user` with `role` and returns a token for it.
    pub async fn token_for(&self, role: Role) -> String {
        let username = format!("{role}-user");
        auth::create_or_update_user(&self.pool, &username, "password-of-a-user", role).await.expect("create a user");
        self.auth.issue(&username, role).expect("sign a token")
    }

    /// Sends `request` as is: with the `Authorization` header it has, or none.
    pub async fn send_raw(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.expect("the router is infallible");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("read the response body").to_bytes();
        Reply { status: parts.status, headers: parts.headers, body }
    }

    /// `method path` with an optional JSON body and `token` as bearer (`None`: no `Authorization` header).
    pub async fn send_as(&self, token: Option<&str>, method: Method, path: &str, body: Option<&str>) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => {
                request.header(header::CONTENT_TYPE, "application/json").body(Body::from(body.to_string())).unwrap()
            }
            None => request.body(Body::empty()).unwrap(),
        };
        self.send_raw(request).await
    }

    /// Stores a DAG as the scheduler would after parsing its file (unpaused, as the test stacks' scheduler is set).
    pub async fn add_dag(&self, yaml: &str) {
        let dag = gust_shared::dag::parse_dag_file("dags/test.yaml", yaml).expect("test DAG parses");
        let client = self.pool.get().await.unwrap();
        db::dags::upsert(&client, &dag, &format!("/dags/{}.yaml", dag.dag_id), "hash-1", yaml, false).await.unwrap();
    }

    /// Triggers a run of the DAG `yaml` through the API with the trigger body
    /// `body` (JSON text) and creates its task instances, as the scheduler does
    /// when the run starts; returns the run's id and its row id.
    pub async fn start_run(&self, yaml: &str, body: &str) -> (String, i64) {
        let dag = gust_shared::dag::parse_dag_file("dags/test.yaml", yaml).expect("test DAG parses");
        let created = self.send_json(Method::POST, &format!("/api/v2/dags/{}/dagRuns", dag.dag_id), body).await;
        assert_eq!(created.status, StatusCode::OK, "{}", created.text());
        let run_id = created.json()["dag_run_id"].as_str().expect("a run id in the answer").to_string();
        let client = self.pool.get().await.unwrap();
        let run = db::runs::get(&client, &dag.dag_id, &run_id).await.unwrap().expect("the triggered run");
        db::task_instances::run_progress::create_for_run(&client, run.id, &dag.dag_id, &run_id, &dag.tasks)
            .await
            .unwrap();
        (run_id, run.id)
    }

    /// Each task id of the task-instance listing at `path` with its state, as the API shows it.
    pub async fn task_states(&self, path: &str) -> std::collections::BTreeMap<String, Value> {
        let reply = self.get(path).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        reply.json()["task_instances"]
            .as_array()
            .expect("a task instance collection")
            .iter()
            .map(|ti| (ti["task_id"].as_str().unwrap().to_string(), ti["state"].clone()))
            .collect()
    }

    /// Sends one request through the whole router, as the admin unless it has an `Authorization` header.
    pub async fn send(&self, mut request: Request<Body>) -> Reply {
        if !request.headers().contains_key(header::AUTHORIZATION) {
            let value = format!("Bearer {}", self.admin_token).parse().expect("a token is a valid header value");
            request.headers_mut().insert(header::AUTHORIZATION, value);
        }
        self.send_raw(request).await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Reply {
        self.send(Request::get(path).body(Body::empty()).unwrap()).await
    }

    /// `method path` with a JSON body (raw text, so malformed JSON can be sent).
    pub async fn send_json(&self, method: Method, path: &str, body: &str) -> Reply {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.send(request).await
    }
}
