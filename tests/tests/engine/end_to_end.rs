//! A DAG runs end to end: YAML file → scheduler → RabbitMQ → workers →
//! PostgreSQL → HTTP API, against the real services.

use std::collections::BTreeMap;

use gust_tests::{write_file, StackOptions, TestStack};
use serde_json::json;

const DIAMOND: &str = r#"
dag_id: diamond
tasks:
  - id: a
    operator: bash
    command: echo "start of $GUST_DAG_ID run $GUST_RUN_ID try $GUST_TRY_NUMBER"
  - id: b
    operator: bash
    command: echo "hello from $GUST_TASK_ID"; echo "to stderr" >&2
    depends_on: [a]
  - id: c
    operator: noop
    depends_on: [a]
  - id: d
    operator: bash
    command: echo joined
    depends_on: [b, c]
"#;

fn states(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn diamond_dag_triggered_over_http_succeeds_with_readable_logs() {
    let stack = TestStack::spawn(&[("diamond.yaml", DIAMOND)]).await;
    let run_id = stack.trigger("diamond", json!({})).await;

    assert_eq!(stack.wait_for_run("diamond", &run_id).await, "success");
    assert_eq!(
        stack.task_states("diamond", &run_id).await,
        states(&[("a", "success"), ("b", "success"), ("c", "success"), ("d", "success")])
    );
    for ti in stack.task_instances("diamond", &run_id).await {
        assert_eq!(ti["try_number"], 1, "{ti}");
        assert!(ti["start_date"].is_string() && ti["end_date"].is_string(), "{ti}");
    }
    let log_a = stack.log_text("diamond", &run_id, "a", 1).await;
    assert!(log_a.contains(&format!("start of diamond run {run_id} try 1")), "{log_a}");
    let log_b = stack.log_text("diamond", &run_id, "b", 1).await;
    assert!(log_b.contains("hello from b"), "{log_b}");
    assert!(log_b.contains("to stderr"), "{log_b}");
    assert!(log_b.contains("command exited with code 0"), "{log_b}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failing_bash_task_fails_the_run_and_marks_downstream_upstream_failed() {
    let dag = r#"
dag_id: breaks
tasks:
  - {id: extract, operator: noop}
  - id: transform
    operator: bash
    command: echo "bad input" >&2; exit 3
    depends_on: [extract]
  - {id: load, operator: noop, depends_on: [transform]}
  - {id: report, operator: noop, depends_on: [load]}
  - {id: side, operator: bash, command: echo fine, depends_on: [extract]}
"#;
    let stack = TestStack::spawn(&[("breaks.yaml", dag)]).await;
    let run_id = stack.trigger("breaks", json!({})).await;

    assert_eq!(stack.wait_for_run("breaks", &run_id).await, "failed");
    assert_eq!(
        stack.task_states("breaks", &run_id).await,
        states(&[
            ("extract", "success"),
            ("transform", "failed"),
            ("load", "upstream_failed"),
            ("report", "upstream_failed"),
            ("side", "success"),
        ])
    );
    let transform =
        stack.task_instances("breaks", &run_id).await.into_iter().find(|t| t["task_id"] == "transform").unwrap();
    assert_eq!(transform["exit_code"], 3, "{transform}");
    let log = stack.log_text("breaks", &run_id, "transform", 1).await;
    assert!(log.contains("bad input") && log.contains("exited with code 3"), "{log}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broken_dag_file_is_an_import_error_while_other_dags_keep_running() {
    let broken = "dag_id: loops\ntasks:\n  - {id: a, operator: noop, depends_on: [b]}\n  - {id: b, operator: noop, depends_on: [a]}\n";
    let good = "dag_id: good\ntasks:\n  - {id: only, operator: bash, command: echo ok}\n";
    let stack = TestStack::spawn(&[("broken.yaml", broken), ("good.yaml", good)]).await;

    let errors = stack
        .eventually("the import error to show", || async {
            let (status, body) = stack.get("/api/v2/importErrors").await;
            (status == 200 && body["total_entries"] == 1).then_some(body)
        })
        .await;
    let error = &errors["import_errors"][0];
    assert!(error["filename"].as_str().unwrap().ends_with("broken.yaml"), "{error}");
    let trace = error["stack_trace"].as_str().unwrap();
    assert!(
        trace.contains("dependency cycle") && (trace.contains("a -> b -> a") || trace.contains("b -> a -> b")),
        "{trace}"
    );
    assert_eq!(stack.get("/api/v2/dags/loops").await.0, 404);

    let run_id = stack.trigger("good", json!({})).await;
    assert_eq!(stack.wait_for_run("good", &run_id).await, "success");

    // Fixing the file clears the error and brings the DAG in.
    write_file(&stack.dag_path("broken.yaml"), "dag_id: loops\ntasks:\n  - {id: a, operator: noop}\n");
    stack.wait_for_dag("loops").await;
    stack
        .eventually("the import error to clear", || async {
            (stack.get("/api/v2/importErrors").await.1["total_entries"] == 0).then_some(())
        })
        .await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_share_the_load() {
    let mut dag = String::from("dag_id: wide\ntasks:\n");
    for i in 0..8 {
        dag.push_str(&format!("  - {{id: t{i}, operator: bash, command: 'sleep 0.3; echo {i}'}}\n"));
    }
    let options = StackOptions { workers: 2, worker_concurrency: 1, ..StackOptions::default() };
    let stack = TestStack::spawn_with(&[("wide.yaml", &dag)], options).await;
    let run_id = stack.trigger("wide", json!({})).await;

    assert_eq!(stack.wait_for_run("wide", &run_id).await, "success");
    let mut per_worker: BTreeMap<String, usize> = BTreeMap::new();
    for ti in stack.task_instances("wide", &run_id).await {
        *per_worker.entry(ti["hostname"].as_str().unwrap_or("none").to_string()).or_default() += 1;
    }
    assert_eq!(per_worker.keys().cloned().collect::<Vec<_>>(), vec!["worker-0", "worker-1"], "{per_worker:?}");
    assert_eq!(per_worker.values().sum::<usize>(), 8);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paused_dag_keeps_its_run_queued_until_unpaused() {
    let stack =
        TestStack::spawn(&[("hello.yaml", "dag_id: hello\ntasks:\n  - {id: hi, operator: bash, command: echo hi}\n")])
            .await;
    stack.wait_for_dag("hello").await;
    let (status, body) = stack.send(reqwest::Method::PATCH, "/api/v2/dags/hello", &json!({"is_paused": true})).await;
    assert_eq!((status, &body["is_paused"]), (200, &json!(true)), "{body}");

    let run_id = stack.trigger("hello", json!({})).await;
    // An absence: two safety sweeps later the run has still not started.
    tokio::time::sleep(stack.settings.scheduler.safety_interval * 2).await;
    let (_, run) = stack.get(&format!("/api/v2/dags/hello/dagRuns/{run_id}")).await;
    assert_eq!(run["state"], "queued", "{run}");

    stack.send(reqwest::Method::PATCH, "/api/v2/dags/hello", &json!({"is_paused": false})).await;
    assert_eq!(stack.wait_for_run("hello", &run_id).await, "success");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_a_dag_file_marks_the_dag_stale() {
    let stack = TestStack::spawn(&[("gone.yaml", "dag_id: gone\ntasks:\n  - {id: a, operator: noop}\n")]).await;
    let dag = stack.wait_for_dag("gone").await;
    assert_eq!(dag["is_stale"], false, "{dag}");
    std::fs::remove_file(stack.dag_path("gone.yaml")).unwrap();
    stack
        .eventually("the DAG to become stale", || async {
            let (_, dag) = stack.get("/api/v2/dags/gone").await;
            (dag["is_stale"] == true).then_some(())
        })
        .await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_running_more_tasks_than_it_has_connections_does_not_stall() {
    let mut dag = String::from("dag_id: crowded\ntasks:\n");
    for i in 0..60 {
        dag.push_str(&format!("  - {{id: t{i}, operator: noop}}\n"));
    }
    let options = StackOptions { worker_concurrency: 16, in_process_engine: false, ..StackOptions::default() };
    let stack = TestStack::spawn_with(&[("crowded.yaml", &dag)], options).await;
    let _scheduler = stack.start_process("gust-scheduler", "scheduler");
    let _worker = stack.start_process_with("gust-worker", "worker", |s| s.database.pool_size = 2);
    let run_id = stack.trigger("crowded", json!({})).await;
    assert_eq!(stack.wait_for_run("crowded", &run_id).await, "success");
    stack.stop().await;
}
