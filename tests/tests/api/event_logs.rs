//! The audit log (`/api/v2/eventLogs`) against the real PostgreSQL: who
//! cleared, triggered or changed what, failed logins, secrets kept out of
//! `extra`, Airflow's filters, and `triggering_user_name` on runs.

use axum::http::{Method, StatusCode};
use gust_shared::{db, secrets::Secrets};
use gust_tests::api::{Reply, TestApi, ADMIN_PASSWORD, ADMIN_USER, ETL_DAG};
use gust_webapi::auth::Role;
use serde_json::{json, Value};

fn ok(reply: Reply) -> Value {
    assert!(reply.status.is_success(), "{}: {}", reply.status, reply.text());
    reply.json()
}

/// The records `query` (a query string) selects, oldest first.
async fn events(api: &TestApi, query: &str) -> Vec<Value> {
    let page = ok(api.get(&format!("/api/v2/eventLogs?{query}")).await);
    page["event_logs"].as_array().unwrap_or_else(|| panic!("{page}")).clone()
}

/// `(event, owner, dag_id, run_id, task_id)` of each record.
fn summary(records: &[Value]) -> Vec<(String, String, String, String, String)> {
    let text = |r: &Value, key: &str| r[key].as_str().unwrap_or("-").to_string();
    records
        .iter()
        .map(|r| (text(r, "event"), text(r, "owner"), text(r, "dag_id"), text(r, "run_id"), text(r, "task_id")))
        .collect()
}

fn row(event: &str, owner: &str, dag: &str, run: &str, task: &str) -> (String, String, String, String, String) {
    (event.into(), owner.into(), dag.into(), run.into(), task.into())
}

#[tokio::test]
async fn who_cleared_a_task_is_answered_by_the_event_log() {
    let api = TestApi::start().await;
    let operator = api.token_for(Role::Operator).await;
    api.add_dag(ETL_DAG).await;
    api.start_run(ETL_DAG, r#"{"dag_run_id": "r1"}"#).await;
    let client = api.pool.get().await.unwrap();
    client
        .execute(
            "UPDATE task_instances SET state = 'failed', try_number = 1, end_date = now() WHERE run_id = 'r1'",
            &[],
        )
        .await
        .unwrap();
    let clear = |dry_run: bool| json!({"dag_run_id": "r1", "task_ids": ["extract"], "dry_run": dry_run}).to_string();
    let path = "/api/v2/dags/etl/clearTaskInstances";
    ok(api.send_as(Some(&operator), Method::POST, path, Some(&clear(true))).await);
    ok(api.send_as(Some(&operator), Method::POST, path, Some(&clear(false))).await);

    let cleared = events(&api, "event=clear&dag_id=etl&task_id=extract").await;
    assert_eq!(
        summary(&cleared),
        [row("clear", "operator-user", "etl", "r1", "extract")],
        "the dry run changed nothing"
    );
    let extra: Value = serde_json::from_str(cleared[0]["extra"].as_str().unwrap()).unwrap();
    assert_eq!(extra["dry_run"], false, "{extra}");
    assert_eq!(extra["method"], "POST", "{extra}");
    assert!(cleared[0]["when"].as_str().is_some() && cleared[0]["event_log_id"].as_i64().is_some());
    assert_eq!(cleared[0]["dag_display_name"], "etl");
    assert_eq!(cleared[0]["task_display_name"], "extract");
}

#[tokio::test]
async fn a_failed_login_is_recorded_with_the_name_tried_and_never_the_password() {
    let api = TestApi::start().await;
    let login = |password: &str| json!({"username": ADMIN_USER, "password": password}).to_string();
    let failed = api.send_as(None, Method::POST, "/auth/token", Some(&login("wrong-guess-1234"))).await;
    failed.assert_error(StatusCode::UNAUTHORIZED);
    assert_eq!(
        api.send_as(None, Method::POST, "/auth/token", Some(&login(ADMIN_PASSWORD))).await.status,
        StatusCode::CREATED
    );

    let page = api.get("/api/v2/eventLogs?included_events=login,login_failed").await;
    let text = page.text();
    assert!(!text.contains("wrong-guess-1234") && !text.contains(ADMIN_PASSWORD), "{text}");
    let records = ok(page)["event_logs"].as_array().unwrap().clone();
    assert_eq!(
        summary(&records),
        [row("login_failed", ADMIN_USER, "-", "-", "-"), row("login", ADMIN_USER, "-", "-", "-")]
    );
    let extra: Value = serde_json::from_str(records[0]["extra"].as_str().unwrap()).unwrap();
    assert_eq!(extra["status"], 401, "{extra}");
}

#[tokio::test]
async fn connection_passwords_secret_extras_and_variable_values_stay_out_of_the_event_log() {
    let api =
        TestApi::start_with(|state| state.with_secrets(Secrets::from_keys(&Secrets::generate_key()).unwrap())).await;
    let connection = json!({
        "connection_id": "warehouse", "conn_type": "postgres", "host": "db.example", "login": "loader",
        "password": "hunter2-secret", "extra": r#"{"sslmode": "require-ssl", "api_key": "k-123456"}"#
    });
    ok(api.send_json(Method::POST, "/api/v2/connections", &connection.to_string()).await);
    let patch = json!({"password": "hunter3-secret"}).to_string();
    ok(api.send_json(Method::PATCH, "/api/v2/connections/warehouse?update_mask=password", &patch).await);
    let variable = json!({"key": "db_password", "value": "s3cr3t-value"}).to_string();
    ok(api.send_json(Method::POST, "/api/v2/variables", &variable).await);
    let user = json!({"username": "ana", "password": "ana-password-1", "role": "viewer"}).to_string();
    ok(api.send_json(Method::POST, "/api/v2/gust/users", &user).await);

    let page = api.get("/api/v2/eventLogs").await;
    let text = page.text();
    for secret in ["hunter2-secret", "hunter3-secret", "k-123456", "require-ssl", "s3cr3t-value", "ana-password-1"] {
        assert!(!text.contains(secret), "`{secret}` leaked into the event log: {text}");
    }
    let records = ok(page)["event_logs"].as_array().unwrap().clone();
    let names: Vec<&str> = records.iter().map(|r| r["event"].as_str().unwrap()).collect();
    assert_eq!(names, ["post_connection", "patch_connection", "post_variable", "post_user"]);
    let extra: Value = serde_json::from_str(records[0]["extra"].as_str().unwrap()).unwrap();
    assert_eq!(extra["host"], "db.example", "what is not secret stays: {extra}");
    assert_eq!(extra["password"], "***", "{extra}");
    assert_eq!(extra["extra"], json!({"sslmode": "***", "api_key": "***"}), "field names stay: {extra}");
}

#[tokio::test]
async fn event_logs_filter_order_page_and_are_readable_by_viewers() {
    let api = TestApi::start().await;
    let operator = api.token_for(Role::Operator).await;
    let viewer = api.token_for(Role::Viewer).await;
    api.add_dag(ETL_DAG).await;
    let trigger = json!({"dag_run_id": "r1", "logical_date": "2026-02-01T00:00:00Z"}).to_string();
    ok(api.send_as(Some(&operator), Method::POST, "/api/v2/dags/etl/dagRuns", Some(&trigger)).await);
    let between = chrono::Utc::now();
    ok(api.send_json(Method::PATCH, "/api/v2/dags/etl", r#"{"is_paused": true}"#).await);
    ok(api.send_json(Method::POST, "/api/v2/pools", r#"{"name": "gpu", "slots": 2}"#).await);
    let all = events(&api, "").await;
    assert_eq!(
        summary(&all),
        [
            row("trigger_dag_run", "operator-user", "etl", "r1", "-"),
            row("patch_dag", ADMIN_USER, "etl", "-", "-"),
            row("post_pool", ADMIN_USER, "-", "-", "-"),
        ]
    );
    assert_eq!(all[0]["logical_date"], "2026-02-01T00:00:00Z");

    let owners = |records: Vec<Value>| summary(&records).into_iter().map(|r| r.0).collect::<Vec<_>>();
    assert_eq!(owners(events(&api, "owner=operator-user").await), ["trigger_dag_run"]);
    assert_eq!(owners(events(&api, "dag_id=etl&run_id=r1").await), ["trigger_dag_run"]);
    assert_eq!(
        owners(events(&api, "included_events=post_pool&included_events=patch_dag").await),
        ["patch_dag", "post_pool"]
    );
    assert_eq!(owners(events(&api, "excluded_events=patch_dag,post_pool").await), ["trigger_dag_run"]);
    assert_eq!(owners(events(&api, "event_pattern=POOL").await), ["post_pool"]);
    let after = between.to_rfc3339().replace('+', "%2B");
    assert_eq!(owners(events(&api, &format!("after={after}")).await), ["patch_dag", "post_pool"]);
    assert_eq!(owners(events(&api, &format!("before={after}")).await), ["trigger_dag_run"]);
    assert_eq!(owners(events(&api, "order_by=-when&limit=1").await), ["post_pool"]);
    let page = ok(api.get("/api/v2/eventLogs?limit=1&offset=1").await);
    assert_eq!((page["total_entries"].as_i64(), page["event_logs"][0]["event"].as_str()), (Some(3), Some("patch_dag")));
    assert_eq!(ok(api.get("/api/v2/eventLogs?dag_id=etl&owner=nobody").await)["total_entries"], 0);
    api.get("/api/v2/eventLogs?map_index=x").await.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    api.get("/api/v2/eventLogs?order_by=password").await.assert_error(StatusCode::BAD_REQUEST);

    let id = all[1]["event_log_id"].as_i64().unwrap();
    let one = ok(api.send_as(Some(&viewer), Method::GET, &format!("/api/v2/eventLogs/{id}"), None).await);
    assert_eq!(one, all[1]);
    assert_eq!(serde_json::from_str::<Value>(one["extra"].as_str().unwrap()).unwrap()["is_paused"], true);
    api.get("/api/v2/eventLogs/999999").await.assert_error(StatusCode::NOT_FOUND);
    api.send_as(None, Method::GET, "/api/v2/eventLogs", None).await.assert_error(StatusCode::UNAUTHORIZED);
    let viewer_list = ok(api.send_as(Some(&viewer), Method::GET, "/api/v2/eventLogs", None).await);
    assert_eq!(viewer_list["total_entries"], 3, "reading the event log records nothing");
}

#[tokio::test]
async fn triggering_user_name_is_who_triggered_or_backfilled_and_null_for_scheduled_runs() {
    let api = TestApi::start().await;
    let operator = api.token_for(Role::Operator).await;
    api.add_dag(ETL_DAG).await;
    let run = ok(api
        .send_as(Some(&operator), Method::POST, "/api/v2/dags/etl/dagRuns", Some(r#"{"dag_run_id": "m1"}"#))
        .await);
    assert_eq!(run["triggering_user_name"], "operator-user");
    assert_eq!(ok(api.get("/api/v2/dags/etl/dagRuns/m1").await)["triggering_user_name"], "operator-user");

    let backfill = json!({"dag_id": "etl", "from_date": "2026-01-01T00:00:00Z", "to_date": "2026-01-02T00:00:00Z"});
    ok(api.send_as(Some(&operator), Method::POST, "/api/v2/backfills", Some(&backfill.to_string())).await);
    let client = api.pool.get().await.unwrap();
    let version: i64 =
        client.query_one("SELECT latest_version_id FROM dags WHERE dag_id = 'etl'", &[]).await.unwrap().get(0);
    let scheduled = db::runs::NewRun {
        dag_id: "etl",
        run_id: "scheduled__2025-12-01",
        run_type: "scheduled",
        logical_date: Some("2025-12-01T00:00:00Z".parse().unwrap()),
        data_interval: None,
        conf: &json!({}),
        dag_version_id: version,
        triggered_by: "scheduler",
        triggering_user_name: None,
    };
    db::runs::insert(&client, &scheduled).await.unwrap();

    let runs = ok(api.get("/api/v2/dags/etl/dagRuns?order_by=run_id").await);
    let mut users: Vec<(String, Value)> = runs["dag_runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["run_type"].as_str().unwrap().to_string(), r["triggering_user_name"].clone()))
        .collect();
    users.dedup();
    assert_eq!(
        users,
        [
            ("backfill".to_string(), json!("operator-user")),
            ("manual".to_string(), json!("operator-user")),
            ("scheduled".to_string(), Value::Null),
        ]
    );
    let stored: Option<String> =
        client.query_one("SELECT triggering_user_name FROM dag_runs WHERE run_id = 'm1'", &[]).await.unwrap().get(0);
    assert_eq!(stored.as_deref(), Some("operator-user"));
}
