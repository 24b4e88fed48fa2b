//! The built-in `http`, `sql` and `python` operators against real services:
//! an HTTP server started by the test (through a URL and an API-created
//! connection), the local PostgreSQL (through `GUST_CONN_`), a virtualenv
//! made by the test. Their results become `return_value` XComs, and what goes
//! wrong ends the try with a reason.

use std::{collections::BTreeMap, time::Duration};

use axum::{
    extract::{Path, Query},
    http::{HeaderMap, StatusCode},
    routing::{get, post},
    Json, Router,
};
use gust_tests::TestStack;
use serde_json::{json, Value};

async fn xcom(stack: &TestStack, dag_id: &str, run_id: &str, task_id: &str) -> Value {
    let path = format!("/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value");
    let (status, entry) = stack.get(&path).await;
    assert_eq!(status, 200, "XCom of {task_id}: {entry}");
    entry["value"].clone()
}

async fn failure_reason(stack: &TestStack, dag_id: &str, run_id: &str, task_id: &str) -> String {
    let ti = stack.task_instance(dag_id, run_id, task_id).await;
    assert_eq!(ti["state"], "failed", "{ti}");
    ti["failure_reason"].as_str().unwrap_or_default().to_string()
}

fn states(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// An HTTP server on 127.0.0.1 with a JSON resource, an echo, a teapot and a slow page; returns its address.
async fn serve_api() -> String {
    let app = Router::new()
        .route(
            "/items/{day}",
            get(|Path(day): Path<String>, Query(query): Query<BTreeMap<String, String>>| async move {
                Json(json!({"day": day, "count": 3, "query": query}))
            }),
        )
        .route(
            "/echo",
            post(|headers: HeaderMap, body: String| async move {
                let token = headers.get("x-token").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                let body: Value = serde_json::from_str(&body).unwrap_or(Value::String(body));
                (StatusCode::CREATED, Json(json!({"got": body, "token": token})))
            }),
        )
        .route("/teapot", get(|| async { (StatusCode::IM_A_TEAPOT, "short and stout") }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding the test API");
    let address = listener.local_addr().expect("test API address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    address.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http_tasks_push_the_response_body_and_fail_on_unexpected_status_or_timeout() {
    let address = serve_api().await;
    let dag = format!(
        r#"
dag_id: http_calls
params: {{day: "2026-03-04"}}
tasks:
  - id: fetch
    operator: http
    url: "http://{address}/items/{{{{ params.day }}}}"
    headers: {{Accept: application/json}}
    data: {{limit: 5, region: "{{{{ params.day }}}}"}}
  - id: post
    operator: http
    method: post
    http_conn_id: builtin_test_api
    endpoint: /echo
    headers: {{X-Token: "t-{{{{ params.day }}}}"}}
    data: {{day: "{{{{ params.day }}}}", n: 2}}
    expected_status: [201]
  - id: teapot
    operator: http
    url: "http://{address}/teapot"
  - id: teapot_expected
    operator: http
    url: "http://{address}/teapot"
    expected_status: [418]
  - id: slow
    operator: http
    url: "http://{address}/slow"
    execution_timeout: 1s
"#
    );
    let stack = TestStack::spawn(&[("http_calls.yaml", &dag)]).await;
    let (host, port) = address.rsplit_once(':').expect("host:port");
    let connection = json!({"connection_id": "builtin_test_api", "conn_type": "http", "host": host, "port": port.parse::<u16>().unwrap()});
    let (status, created) = stack.send(reqwest::Method::POST, "/api/v2/connections", &connection).await;
    assert_eq!(status, 201, "creating the connection through the API: {created}");
    let run_id = stack.trigger("http_calls", json!({})).await;
    assert_eq!(stack.wait_for_run("http_calls", &run_id).await, "failed");
    assert_eq!(
        stack.task_states("http_calls", &run_id).await,
        states(&[
            ("fetch", "success"),
            ("post", "success"),
            ("teapot", "failed"),
            ("teapot_expected", "success"),
            ("slow", "failed")
        ])
    );
    assert_eq!(
        xcom(&stack, "http_calls", &run_id, "fetch").await,
        json!({"day": "2026-03-04", "count": 3, "query": {"limit": "5", "region": "2026-03-04"}})
    );
    assert_eq!(
        xcom(&stack, "http_calls", &run_id, "post").await,
        json!({"got": {"day": "2026-03-04", "n": 2}, "token": "t-2026-03-04"})
    );
    assert_eq!(xcom(&stack, "http_calls", &run_id, "teapot_expected").await, json!("short and stout"));
    let reason = failure_reason(&stack, "http_calls", &run_id, "teapot").await;
    assert!(reason.contains("418") && reason.contains("any 2xx"), "{reason}");
    let reason = failure_reason(&stack, "http_calls", &run_id, "slow").await;
    assert!(reason.contains("timed out after 1s"), "{reason}");

    let log = stack.log_text("http_calls", &run_id, "post", 1).await;
    assert!(log.contains(&format!("POST http://{address}/echo")) && log.contains("201"), "{log}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sql_tasks_bind_parameters_and_push_rows_as_objects() {
    let stack = TestStack::spawn(&[]).await;
    // The stack's own database is the target: through a GUST_CONN_ URI, and
    // through a connection created with the API.
    let conn_id = stack.database_as_env_connection("builtin_sql");
    let url = reqwest::Url::parse(&stack.settings.database.url).expect("the database URL");
    let mut connection = json!({
        "connection_id": "builtin_sql_api", "conn_type": "postgres", "host": url.host_str(),
        "port": url.port().unwrap_or(5432), "login": url.username(), "schema": url.path().trim_start_matches('/'),
    });
    if let Some(password) = url.password() {
        connection["password"] = json!(password);
    }
    let (status, created) = stack.send(reqwest::Method::POST, "/api/v2/connections", &connection).await;
    assert_eq!(status, 201, "creating the connection through the API: {created}");
    let dag = format!(
        r#"
dag_id: sql_calls
params: {{day: "2026-03-04"}}
tasks:
  - id: count
    operator: sql
    conn_id: {conn_id}
    sql: >-
      select count(*) as n, %(day)s::date as day, %(tag)s as tag, 1.50::numeric as price,
      '{{"a": 1}}'::jsonb as doc, null::text as nothing, 'x%%' as pct
      from generate_series(1, %(n)s)
    parameters: {{day: "{{{{ params.day }}}}", n: 3, tag: "it's'; drop table dags; --"}}
  - id: through_api
    operator: sql
    conn_id: builtin_sql_api
    sql: select current_database() as db, %(x)s::int + 1 as next
    parameters: {{x: 41}}
  - id: broken
    operator: sql
    conn_id: {conn_id}
    sql: select * from no_such_table
  - id: too_many
    operator: sql
    conn_id: {conn_id}
    sql: select generate_series(1, 20) as i
    max_rows: 5
  - id: missing_conn
    operator: sql
    conn_id: nobody_set_this
    sql: select 1
"#
    );
    std::fs::write(stack.dag_path("sql_calls.yaml"), &dag).expect("writing the DAG file");
    stack.wait_for_dag("sql_calls").await;
    let run_id = stack.trigger("sql_calls", json!({})).await;
    assert_eq!(stack.wait_for_run("sql_calls", &run_id).await, "failed");
    assert_eq!(
        stack.task_states("sql_calls", &run_id).await,
        states(&[
            ("count", "success"),
            ("through_api", "success"),
            ("broken", "failed"),
            ("too_many", "failed"),
            ("missing_conn", "failed")
        ])
    );
    assert_eq!(
        xcom(&stack, "sql_calls", &run_id, "count").await,
        json!([{"n": 3, "day": "2026-03-04", "tag": "it's'; drop table dags; --", "price": 1.5,
                "doc": {"a": 1}, "nothing": null, "pct": "x%"}])
    );
    let database = url.path().trim_start_matches('/');
    assert_eq!(xcom(&stack, "sql_calls", &run_id, "through_api").await, json!([{"db": database, "next": 42}]));
    let reason = failure_reason(&stack, "sql_calls", &run_id, "broken").await;
    assert!(reason.contains("relation \"no_such_table\" does not exist"), "{reason}");
    let reason = failure_reason(&stack, "sql_calls", &run_id, "too_many").await;
    assert!(reason.contains("max_rows (5)") && reason.contains("aggregate"), "{reason}");
    let reason = failure_reason(&stack, "sql_calls", &run_id, "missing_conn").await;
    assert!(reason.contains("GUST_CONN_NOBODY_SET_THIS") && reason.contains("not defined"), "{reason}");
    let (status, dags) = stack.get("/api/v2/dags").await;
    assert_eq!(status, 200, "the dags table survived the quoted parameter: {dags}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn python_tasks_call_a_function_in_a_virtualenv_and_push_its_return_value() {
    let root = std::env::temp_dir().join(format!("gust-python-op-{}", uuid::Uuid::new_v4()));
    let lib = root.join("lib");
    std::fs::create_dir_all(&lib).expect("creating the module folder");
    std::fs::write(
        lib.join("scoring.py"),
        r#"
import sys

def run(table, n=1):
    print(f"scoring {table}")
    return {"table": table, "n": n * 2, "prefix": sys.prefix}

def not_json():
    return {1, 2}

def boom():
    raise ValueError("no rows today")

def slow():
    import time
    time.sleep(60)
"#,
    )
    .expect("writing the module");
    let venv = root.join("venv");
    let made = std::process::Command::new("python3").arg("-m").arg("venv").arg(&venv).output();
    let made = made.expect("python3 -m venv (install python3-venv)");
    assert!(made.status.success(), "python3 -m venv: {}", String::from_utf8_lossy(&made.stderr));
    let dag = format!(
        r#"
dag_id: python_calls
params: {{table: orders}}
tasks:
  - id: score
    operator: python
    python_callable: "scoring:run"
    python_path: ["{lib}"]
    op_kwargs: {{table: "{{{{ params.table }}}}", n: 21}}
    python: "{python}"
  - id: not_json
    operator: python
    python_callable: "scoring:not_json"
    python_path: ["{lib}"]
  - id: boom
    operator: python
    python_callable: "scoring:boom"
    python_path: ["{lib}"]
  - id: no_function
    operator: python
    python_callable: "scoring:nope"
    python_path: ["{lib}"]
  - id: no_module
    operator: python
    python_callable: "no_such_module:run"
  - id: slow
    operator: python
    python_callable: "scoring:slow"
    python_path: ["{lib}"]
    execution_timeout: 1s
"#,
        lib = lib.display(),
        python = venv.join("bin/python").display()
    );
    let stack = TestStack::spawn(&[("python_calls.yaml", &dag)]).await;
    let run_id = stack.trigger("python_calls", json!({})).await;
    assert_eq!(stack.wait_for_run("python_calls", &run_id).await, "failed");
    assert_eq!(
        stack.task_states("python_calls", &run_id).await,
        states(&[
            ("score", "success"),
            ("not_json", "failed"),
            ("boom", "failed"),
            ("no_function", "failed"),
            ("no_module", "failed"),
            ("slow", "failed")
        ])
    );
    let value = xcom(&stack, "python_calls", &run_id, "score").await;
    assert_eq!((&value["table"], &value["n"]), (&json!("orders"), &json!(42)), "{value}");
    let prefix = std::fs::canonicalize(&venv).expect("the venv folder");
    let reported = std::fs::canonicalize(value["prefix"].as_str().unwrap_or_default()).unwrap_or_default();
    assert_eq!(reported, prefix, "the callable ran in the test's virtualenv: {value}");
    let log = stack.log_text("python_calls", &run_id, "score", 1).await;
    assert!(log.contains("scoring orders"), "{log}");

    let reason = failure_reason(&stack, "python_calls", &run_id, "not_json").await;
    assert!(reason.contains("not JSON-serialisable"), "{reason}");
    let reason = failure_reason(&stack, "python_calls", &run_id, "boom").await;
    assert!(reason.contains("raised ValueError: no rows today"), "{reason}");
    let reason = failure_reason(&stack, "python_calls", &run_id, "no_function").await;
    assert!(reason.contains("module `scoring` has no `nope`"), "{reason}");
    let reason = failure_reason(&stack, "python_calls", &run_id, "no_module").await;
    assert!(reason.contains("cannot import module `no_such_module`"), "{reason}");
    let reason = failure_reason(&stack, "python_calls", &run_id, "slow").await;
    assert!(reason.contains("timed out after 1s"), "{reason}");
    let log = stack.log_text("python_calls", &run_id, "boom", 1).await;
    assert!(log.contains("Traceback"), "the traceback is in the log: {log}");
    stack.stop().await;
    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unknown_argument_of_a_built_in_operator_is_an_import_error_naming_it() {
    let dag = "dag_id: typo\ntasks:\n  - {id: a, operator: http, url: 'http://x/', timeout: 5}\n";
    let stack = TestStack::spawn(&[("typo.yaml", dag)]).await;
    let errors = stack
        .eventually("the import error to show", || async {
            let (status, body) = stack.get("/api/v2/importErrors").await;
            (status == 200 && body["total_entries"] == 1).then_some(body)
        })
        .await;
    let trace = errors["import_errors"][0]["stack_trace"].as_str().unwrap_or_default().to_string();
    assert!(trace.contains("task `a`: operator `http`: unknown field `timeout`"), "{trace}");
    stack.stop().await;
}
