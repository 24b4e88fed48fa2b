//! Connections reach tasks through templates (`conn.<id>.…`), from `GUST_CONN_<ID>`
//! URIs, and their secrets, like secret variables', are `***` in the task's log.

use gust_tests::TestStack;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_connection_from_an_env_uri_renders_into_a_task_and_its_secrets_are_masked_in_the_log() {
    // SAFETY (edition 2021: set_var is safe): a name no other test reads.
    std::env::set_var(
        "GUST_CONN_WAREHOUSE_ENGINE_TEST",
        "postgresql://loader:pw-s3cr3t-42@db.example:6432/dwh?sslmode=require",
    );
    let dag = r#"
dag_id: uses_conn
tasks:
  - id: show
    operator: bash
    command: >-
      echo "host={{ conn.warehouse_engine_test.host }} port={{ conn.warehouse_engine_test.port }}
      schema={{ conn.warehouse_engine_test.schema }} ssl={{ conn.warehouse_engine_test.extra_dejson.sslmode }}
      type={{ conn.warehouse_engine_test.conn_type }}";
      echo "password={{ conn.warehouse_engine_test.password }} token={{ var.value.api_token }}"
  - {id: missing, operator: bash, command: "echo {{ conn.no_such_conn.host }}"}
"#;
    let stack = TestStack::spawn(&[("uses_conn.yaml", dag)]).await;
    let (status, body) = stack
        .send(reqwest::Method::POST, "/api/v2/variables", &json!({"key": "api_token", "value": "tok-9f8e7d6c"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let run_id = stack.trigger("uses_conn", json!({})).await;
    assert_eq!(stack.wait_for_run("uses_conn", &run_id).await, "failed");
    let log = stack.log_text("uses_conn", &run_id, "show", 1).await;
    assert!(log.contains("host=db.example port=6432"), "{log}");
    assert!(log.contains("schema=dwh ssl=require") && log.contains("type=postgres"), "{log}");
    assert!(log.contains("password=*** token=***"), "both secrets are masked: {log}");
    assert!(!log.contains("pw-s3cr3t-42") && !log.contains("tok-9f8e7d6c"), "{log}");
    let ti = stack.task_instance("uses_conn", &run_id, "show").await;
    let rendered = ti["rendered_fields"].to_string();
    assert!(!rendered.contains("pw-s3cr3t-42") && rendered.contains("password=***"), "{rendered}");
    let log = stack.log_text("uses_conn", &run_id, "missing", 1).await;
    assert!(log.contains("connection `no_such_conn` does not exist"), "{log}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_connection_created_through_the_api_renders_decrypted_into_a_task_and_is_masked_in_its_log() {
    let dag = r#"
dag_id: uses_stored_conn
tasks:
  - id: show
    operator: bash
    command: >-
      echo "login={{ conn.stored_engine_test.login }}@{{ conn.stored_engine_test.host }}
      key={{ conn.stored_engine_test.extra_dejson.api_key }} region={{ conn.stored_engine_test.extra_dejson.region }}
      password={{ conn.stored_engine_test.password }}"
"#;
    let stack = TestStack::spawn(&[("uses_stored_conn.yaml", dag)]).await;
    let connection = json!({
        "connection_id": "stored_engine_test", "conn_type": "http", "host": "api.example", "login": "svc",
        "password": "pw-st0red-77", "extra": "{\"api_key\": \"key-5ecret-31\", \"region\": \"eu-west\"}",
    });
    let (status, body) = stack.send(reqwest::Method::POST, "/api/v2/connections", &connection).await;
    assert_eq!(status, 201, "{body}");
    let stored: String = stack
        .pool
        .get()
        .await
        .unwrap()
        .query_one("SELECT row_to_json(c)::text FROM connections c WHERE connection_id = 'stored_engine_test'", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!stored.contains("pw-st0red-77") && !stored.contains("key-5ecret-31"), "encrypted at rest: {stored}");
    let run_id = stack.trigger("uses_stored_conn", json!({})).await;
    assert_eq!(stack.wait_for_run("uses_stored_conn", &run_id).await, "success");
    let log = stack.log_text("uses_stored_conn", &run_id, "show", 1).await;
    assert!(log.contains("login=svc@api.example") && log.contains("region=eu-west"), "{log}");
    assert!(log.contains("key=*** region") && log.contains("password=***"), "secrets are masked: {log}");
    assert!(!log.contains("pw-st0red-77") && !log.contains("key-5ecret-31"), "{log}");
    stack.stop().await;
}
