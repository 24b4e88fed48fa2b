//! Sensors against real services, in both modes: a file the DAG's own task
//! writes, an HTTP server started by the test, the stack's PostgreSQL
//! through `GUST_CONN_`, and another DAG's run. In `reschedule` mode a
//! sensor waits `up_for_reschedule` holding no worker slot; in `poke` mode
//! it keeps its slot; a timeout fails it without retry, or skips it with
//! `soft_fail`.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use axum::{extract::Path, http::StatusCode, routing::get, Router};
use gust_tests::{StackOptions, TestStack};
use serde_json::json;

/// A folder for the file sensors of one test.
fn scratch(stack: &TestStack, name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("gust-sensors-{}-{name}", stack.settings.amqp.namespace));
    std::fs::create_dir_all(&dir).expect("creating the sensors' folder");
    dir
}

/// Spawns a stack whose single worker runs one task at a time.
async fn one_slot_stack(dags: &[(&str, &str)]) -> TestStack {
    TestStack::spawn_with(dags, StackOptions { worker_concurrency: 1, ..StackOptions::default() }).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rescheduled_sensor_frees_the_only_worker_slot_for_the_task_it_waits_for() {
    // `wait` goes first (higher priority) and takes the worker's only slot;
    // `make` can only run, and write the file `wait` looks for, once `wait`
    // has given the slot back between pokes.
    let dag = |dir: &std::path::Path| {
        format!(
            r#"
dag_id: reschedule_frees_slot
tasks:
  - id: wait
    operator: file_sensor
    filepath: "{dir}/ready"
    mode: reschedule
    poke_interval: 500ms
    timeout: 2m
    priority_weight: 10
  - id: make
    operator: bash
    command: "touch {dir}/ready"
  - id: after
    operator: noop
    depends_on: [wait]
"#,
            dir = dir.display()
        )
    };
    let stack = one_slot_stack(&[]).await;
    let dir = scratch(&stack, "reschedule");
    gust_tests::write_file(&stack.dag_path("reschedule_frees_slot.yaml"), &dag(&dir));
    let run_id = stack.trigger("reschedule_frees_slot", json!({})).await;
    assert_eq!(stack.wait_for_run("reschedule_frees_slot", &run_id).await, "success");

    let wait = stack.task_instance("reschedule_frees_slot", &run_id, "wait").await;
    assert_eq!(wait["try_number"], 1, "every poke belongs to the one try: {wait}");
    let log = stack.log_text("reschedule_frees_slot", &run_id, "wait", 1).await;
    assert!(log.contains("not yet:") && log.contains("does not exist"), "the first poke found no file: {log}");
    assert!(log.contains("the worker slot is free meanwhile"), "{log}");
    assert!(log.contains("sensor condition met"), "{log}");
    let make = stack.task_instance("reschedule_frees_slot", &run_id, "make").await;
    let (wait_start, make_start) = (wait["start_date"].as_str().unwrap(), make["start_date"].as_str().unwrap());
    assert!(wait_start < make_start, "the sensor started first and kept its start date: {wait_start} vs {make_start}");
    std::fs::remove_dir_all(&dir).ok();
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poking_sensor_keeps_its_slot_and_its_timeout_fails_it_without_retry() {
    let stack = one_slot_stack(&[]).await;
    let dir = scratch(&stack, "poke");
    let dag = format!(
        r#"
dag_id: poke_holds_slot
default_args: {{retries: 2, retry_delay: 1s}}
tasks:
  - id: wait
    operator: file_sensor
    filepath: "{dir}/ready"
    poke_interval: 300ms
    timeout: 2s
    priority_weight: 10
  - id: make
    operator: bash
    command: "touch {dir}/ready"
"#,
        dir = dir.display()
    );
    gust_tests::write_file(&stack.dag_path("poke_holds_slot.yaml"), &dag);
    let run_id = stack.trigger("poke_holds_slot", json!({})).await;
    assert_eq!(stack.wait_for_run("poke_holds_slot", &run_id).await, "failed");

    let wait = stack.task_instance("poke_holds_slot", &run_id, "wait").await;
    assert_eq!(wait["state"], "failed", "{wait}");
    assert_eq!(wait["try_number"], 1, "a sensor timeout is not retried: {wait}");
    assert!(wait["failure_reason"].as_str().unwrap_or_default().contains("sensor timed out"), "{wait}");
    let make = stack.task_instance("poke_holds_slot", &run_id, "make").await;
    assert_eq!(make["state"], "success");
    assert!(
        make["start_date"].as_str().unwrap() >= wait["end_date"].as_str().unwrap(),
        "`make` waited for the slot the poking sensor held: {make} / {wait}"
    );
    let log = stack.log_text("poke_holds_slot", &run_id, "wait", 1).await;
    assert!(log.matches("not yet:").count() >= 3, "it poked every 300ms on its slot: {log}");
    std::fs::remove_dir_all(&dir).ok();
    stack.stop().await;
}

/// An HTTP server whose `/ready/{name}` answers 503 twice, then 200, per name;
/// `/never` always 503. Returns its address and the requests each name got.
async fn serve_readiness() -> (String, Arc<Mutex<BTreeMap<String, u32>>>) {
    let hits: Arc<Mutex<BTreeMap<String, u32>>> = Arc::default();
    let counted = hits.clone();
    let app = Router::new()
        .route(
            "/ready/{name}",
            get(move |Path(name): Path<String>| {
                let hits = counted.clone();
                async move {
                    let mut hits = hits.lock().unwrap();
                    let n = hits.entry(name).or_default();
                    *n += 1;
                    if *n >= 3 {
                        (StatusCode::OK, "ready")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "warming up")
                    }
                }
            }),
        )
        .route("/never", get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down for good") }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding the test API");
    let address = listener.local_addr().expect("test API address").to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (address, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http_sensors_wait_for_an_expected_status_in_both_modes_and_soft_fail_skips() {
    let (address, hits) = serve_readiness().await;
    let dag = format!(
        r#"
dag_id: http_sensing
tasks:
  - id: poking
    operator: http_sensor
    url: "http://{address}/ready/poking"
    poke_interval: 200ms
    timeout: 1m
  - id: rescheduled
    operator: http_sensor
    url: "http://{address}/ready/rescheduled"
    mode: reschedule
    poke_interval: 200ms
    timeout: 1m
  - id: hopeless
    operator: http_sensor
    url: "http://{address}/never"
    mode: reschedule
    poke_interval: 200ms
    timeout: 1s
    soft_fail: true
  - id: after_hopeless
    operator: noop
    depends_on: [hopeless]
"#
    );
    let stack = TestStack::spawn(&[("http_sensing.yaml", &dag)]).await;
    let run_id = stack.trigger("http_sensing", json!({})).await;
    assert_eq!(stack.wait_for_run("http_sensing", &run_id).await, "success");
    let states = stack.task_states("http_sensing", &run_id).await;
    assert_eq!(states["poking"], "success");
    assert_eq!(states["rescheduled"], "success");
    assert_eq!(states["hopeless"], "skipped", "soft_fail skips a sensor that times out: {states:?}");
    assert_eq!(states["after_hopeless"], "skipped", "a skip propagates as Airflow's: {states:?}");
    let counted = hits.lock().unwrap().clone();
    assert_eq!(counted.get("poking"), Some(&3), "two 503s, then the 200: {counted:?}");
    assert_eq!(counted.get("rescheduled"), Some(&3), "{counted:?}");
    let log = stack.log_text("http_sensing", &run_id, "rescheduled", 1).await;
    assert!(log.contains("HTTP 503") && log.contains("waiting for any 2xx"), "{log}");
    let hopeless = stack.task_instance("http_sensing", &run_id, "hopeless").await;
    assert!(hopeless["failure_reason"].as_str().unwrap_or_default().contains("timed out"), "{hopeless}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sql_sensors_poke_until_the_first_cell_is_truthy_in_both_modes() {
    let stack = TestStack::spawn(&[]).await;
    let conn_id = stack.database_as_env_connection("sensor_db");
    let client = stack.pool.get().await.expect("a database connection");
    client.batch_execute("CREATE SEQUENCE pokes_poking; CREATE SEQUENCE pokes_rescheduled;").await.unwrap();
    let dag = format!(
        r#"
dag_id: sql_sensing
tasks:
  - id: poking
    operator: sql_sensor
    conn_id: {conn_id}
    sql: "select nextval('pokes_poking') >= %(enough)s"
    parameters: {{enough: 3}}
    poke_interval: 200ms
  - id: rescheduled
    operator: sql_sensor
    conn_id: {conn_id}
    sql: "select case when nextval('pokes_rescheduled') >= 3 then 'yes' else '' end"
    mode: reschedule
    poke_interval: 200ms
  - id: broken
    operator: sql_sensor
    conn_id: {conn_id}
    sql: "select no_such_column from pg_class"
    mode: reschedule
"#
    );
    gust_tests::write_file(&stack.dag_path("sql_sensing.yaml"), &dag);
    let run_id = stack.trigger("sql_sensing", json!({})).await;
    assert_eq!(stack.wait_for_run("sql_sensing", &run_id).await, "failed");
    let states = stack.task_states("sql_sensing", &run_id).await;
    assert_eq!((states["poking"].as_str(), states["rescheduled"].as_str()), ("success", "success"), "{states:?}");
    for sequence in ["pokes_poking", "pokes_rescheduled"] {
        let row = client.query_one(&format!("SELECT last_value FROM {sequence}"), &[]).await.unwrap();
        assert_eq!(row.get::<_, i64>(0), 3, "{sequence}: it poked until the third call, then stopped");
    }
    let broken = stack.task_instance("sql_sensing", &run_id, "broken").await;
    assert_eq!(broken["state"], "failed");
    assert!(broken["failure_reason"].as_str().unwrap_or_default().contains("no_such_column"), "{broken}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_external_task_sensor_waits_for_the_other_dags_run_of_the_same_logical_date() {
    let producer = r#"
dag_id: producer
tasks:
  - id: produce
    operator: bash
    command: "sleep 1"
  - id: broken
    operator: bash
    command: "exit 3"
"#;
    let consumer = r#"
dag_id: consumer
tasks:
  - id: wait_task
    operator: external_task_sensor
    external_dag_id: producer
    external_task_id: produce
    poke_interval: 200ms
  - id: wait_run
    operator: external_task_sensor
    external_dag_id: producer
    allowed_states: [success, failed]
    mode: reschedule
    poke_interval: 200ms
  - id: wait_broken
    operator: external_task_sensor
    external_dag_id: producer
    external_task_id: broken
    failed_states: [failed, upstream_failed]
    mode: reschedule
    poke_interval: 200ms
  - id: wait_yesterday
    operator: external_task_sensor
    external_dag_id: producer
    external_task_id: produce
    execution_delta: 1d
    poke_interval: 200ms
    timeout: 2s
    soft_fail: true
"#;
    let stack = TestStack::spawn(&[("producer.yaml", producer), ("consumer.yaml", consumer)]).await;
    let trigger = |dag_id: &'static str| {
        let stack = &stack;
        async move {
            stack.wait_for_dag(dag_id).await;
            let body = json!({"logical_date": "2026-03-04T00:00:00Z", "conf": {}});
            let (status, run) =
                stack.send(reqwest::Method::POST, &format!("/api/v2/dags/{dag_id}/dagRuns"), &body).await;
            assert_eq!(status, 200, "triggering {dag_id}: {run}");
            run["dag_run_id"].as_str().unwrap().to_string()
        }
    };
    // The consumer first: its sensors find no producer run yet and wait.
    let consumer_run = trigger("consumer").await;
    stack.wait_for_task_state("consumer", &consumer_run, "wait_run", "up_for_reschedule").await;
    let producer_run = trigger("producer").await;
    assert_eq!(stack.wait_for_run("producer", &producer_run).await, "failed");
    assert_eq!(stack.wait_for_run("consumer", &consumer_run).await, "failed");

    let states = stack.task_states("consumer", &consumer_run).await;
    assert_eq!(states["wait_task"], "success", "{states:?}");
    assert_eq!(states["wait_run"], "success", "a failed run is allowed here: {states:?}");
    assert_eq!(states["wait_broken"], "failed", "{states:?}");
    assert_eq!(states["wait_yesterday"], "skipped", "no producer run a day earlier: {states:?}");
    let broken = stack.task_instance("consumer", &consumer_run, "wait_broken").await;
    assert!(broken["failure_reason"].as_str().unwrap_or_default().contains("one of failed_states"), "{broken}");
    let log = stack.log_text("consumer", &consumer_run, "wait_task", 1).await;
    assert!(log.contains("producer has no run for logical date 2026-03-04T00:00:00Z"), "{log}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rescheduled_sensor_that_times_out_fails_without_retry() {
    let stack = one_slot_stack(&[]).await;
    let dir = scratch(&stack, "reschedule-timeout");
    let dag = format!(
        r#"
dag_id: never_ready
default_args: {{retries: 2, retry_delay: 1s}}
tasks:
  - id: wait
    operator: file_sensor
    filepath: "{dir}/never"
    mode: reschedule
    poke_interval: 300ms
    timeout: 2s
"#,
        dir = dir.display()
    );
    gust_tests::write_file(&stack.dag_path("never_ready.yaml"), &dag);
    let run_id = stack.trigger("never_ready", json!({})).await;
    assert_eq!(stack.wait_for_run("never_ready", &run_id).await, "failed");

    let wait = stack.task_instance("never_ready", &run_id, "wait").await;
    assert_eq!(wait["try_number"], 1, "a sensor timeout is not retried, however many pokes it took: {wait}");
    assert!(wait["failure_reason"].as_str().unwrap_or_default().contains("sensor timed out"), "{wait}");
    let log = stack.log_text("never_ready", &run_id, "wait", 1).await;
    assert!(log.matches("not yet:").count() >= 3, "it was rescheduled several times before the timeout: {log}");
    std::fs::remove_dir_all(&dir).ok();
    stack.stop().await;
}
