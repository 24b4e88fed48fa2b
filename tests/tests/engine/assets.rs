//! Assets (Airflow 3's data-aware scheduling): a producer task's successful
//! try records an event per outlet, and a DAG scheduled on assets gets one
//! `asset_triggered` run, linked to the events that triggered it, when its
//! condition holds — exactly once however many schedulers run.

use std::time::Duration;

use gust_shared::db::assets::{record_event, NewAssetEvent};
use gust_tests::{StackOptions, TestStack};
use serde_json::{json, Value};

const A: &str = "s3://lake/orders";
const B: &str = "s3://lake/customers";

fn producer(dag_id: &str, asset: &str, command: &str) -> String {
    format!(
        "dag_id: {dag_id}\ntasks:\n  - id: make\n    operator: bash\n    command: {command}\n    outlets: ['{asset}']\n"
    )
}

fn consumer(dag_id: &str, assets: &str) -> String {
    format!("dag_id: {dag_id}\nschedule: {{assets: {assets}}}\ntasks:\n  - {{id: use, operator: noop}}\n")
}

/// The DAG's asset-triggered runs (run id, state), oldest first.
async fn asset_runs(stack: &TestStack, dag_id: &str) -> Vec<(String, String)> {
    let client = stack.pool.get().await.expect("a database connection");
    let rows = client
        .query(
            "SELECT run_id, state FROM dag_runs WHERE dag_id = $1 AND run_type = 'asset_triggered' \
             AND triggered_by = 'asset' AND logical_date IS NULL ORDER BY id",
            &[&dag_id],
        )
        .await
        .expect("listing runs");
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

async fn wait_for_asset_runs(stack: &TestStack, dag_id: &str, count: usize) -> Vec<(String, String)> {
    stack
        .eventually(&format!("{count} asset-triggered runs of {dag_id}"), || async {
            let runs = asset_runs(stack, dag_id).await;
            (runs.len() >= count).then_some(runs)
        })
        .await
}

/// The events linked to a run: (asset URI, source DAG, source run), oldest first.
async fn linked_events(stack: &TestStack, dag_id: &str, run_id: &str) -> Vec<(String, Option<String>, Option<String>)> {
    let client = stack.pool.get().await.expect("a database connection");
    let rows = client
        .query(
            r#"SELECT a.uri, e.source_dag_id, e.source_run_id
               FROM dag_runs r JOIN dag_run_asset_events l ON l.run_pk = r.id
               JOIN asset_events e ON e.id = l.event_id JOIN assets a ON a.id = e.asset_id
               WHERE r.dag_id = $1 AND r.run_id = $2 ORDER BY e.id"#,
            &[&dag_id, &run_id],
        )
        .await
        .expect("listing linked events");
    rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect()
}

async fn count(stack: &TestStack, sql: &str) -> i64 {
    let client = stack.pool.get().await.expect("a database connection");
    client.query_one(sql, &[]).await.expect("counting").get(0)
}

/// Lets two more safety sweeps pass, so anything wrongly created would show
/// (an absence: a sleep is the only way to show nothing more happens).
async fn two_more_sweeps(stack: &TestStack) {
    tokio::time::sleep(stack.settings.scheduler.safety_interval * 2 + Duration::from_millis(500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_producers_success_triggers_its_consumer_once_with_the_event_linked() {
    let stack = TestStack::spawn(&[
        ("producer.yaml", &producer("producer", A, "echo made")),
        ("consumer.yaml", &consumer("consumer", &format!("['{A}']"))),
    ])
    .await;
    stack.wait_for_dag("consumer").await;
    let producer_run = stack.trigger("producer", json!({})).await;
    assert_eq!(stack.wait_for_run("producer", &producer_run).await, "success");

    let runs = wait_for_asset_runs(&stack, "consumer", 1).await;
    let (run_id, _) = &runs[0];
    assert!(run_id.starts_with("asset_triggered__"), "{run_id}");
    assert_eq!(
        linked_events(&stack, "consumer", run_id).await,
        [(A.to_string(), Some("producer".to_string()), Some(producer_run.clone()))]
    );
    assert_eq!(stack.wait_for_run("consumer", run_id).await, "success");
    let (_, run) = stack.get(&format!("/api/v2/dags/consumer/dagRuns/{run_id}")).await;
    assert_eq!((&run["run_type"], &run["logical_date"]), (&json!("asset_triggered"), &Value::Null), "{run}");
    let (_, dag) = stack.get("/api/v2/dags/consumer").await;
    assert_eq!(dag["timetable_summary"], "Asset", "{dag}");

    two_more_sweeps(&stack).await;
    assert_eq!(asset_runs(&stack, "consumer").await.len(), 1, "one event triggers one run");
    assert_eq!(count(&stack, "SELECT count(*) FROM asset_queued_events").await, 0);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn all_waits_for_every_asset_and_any_does_not() {
    let stack = TestStack::spawn(&[
        ("make_a.yaml", &producer("make_a", A, "echo a")),
        ("make_b.yaml", &producer("make_b", B, "echo b")),
        ("both.yaml", &consumer("both", &format!("['{A}', '{B}']"))),
        ("either.yaml", &consumer("either", &format!("{{any: ['{A}', {{all: ['{B}']}}]}}"))),
    ])
    .await;
    for dag_id in ["both", "either"] {
        stack.wait_for_dag(dag_id).await;
    }
    let run_a = stack.trigger("make_a", json!({})).await;
    assert_eq!(stack.wait_for_run("make_a", &run_a).await, "success");
    wait_for_asset_runs(&stack, "either", 1).await;
    two_more_sweeps(&stack).await;
    assert!(asset_runs(&stack, "both").await.is_empty(), "`all` waits for the customers too");

    let run_b = stack.trigger("make_b", json!({})).await;
    assert_eq!(stack.wait_for_run("make_b", &run_b).await, "success");
    let both = wait_for_asset_runs(&stack, "both", 1).await;
    let sources: Vec<Option<String>> =
        linked_events(&stack, "both", &both[0].0).await.into_iter().map(|(_, dag, _)| dag).collect();
    assert_eq!(sources, [Some("make_a".to_string()), Some("make_b".to_string())]);
    let either = wait_for_asset_runs(&stack, "either", 2).await;
    assert_eq!(linked_events(&stack, "either", &either[1].0).await[0].0, B);
    two_more_sweeps(&stack).await;
    assert_eq!((asset_runs(&stack, "both").await.len(), asset_runs(&stack, "either").await.len()), (1, 2));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_producer_records_no_event_and_triggers_nothing() {
    let stack = TestStack::spawn(&[
        ("broken.yaml", &producer("broken", A, "exit 3")),
        ("consumer.yaml", &consumer("consumer", &format!("['{A}']"))),
    ])
    .await;
    stack.wait_for_dag("consumer").await;
    let run = stack.trigger("broken", json!({})).await;
    assert_eq!(stack.wait_for_run("broken", &run).await, "failed");
    two_more_sweeps(&stack).await;
    assert_eq!(count(&stack, "SELECT count(*) FROM asset_events").await, 0);
    assert!(asset_runs(&stack, "consumer").await.is_empty());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_consumer_keeps_its_events_and_runs_once_unpaused() {
    let stack = TestStack::spawn(&[
        ("producer.yaml", &producer("producer", A, "echo made")),
        ("consumer.yaml", &consumer("consumer", &format!("['{A}']"))),
    ])
    .await;
    stack.wait_for_dag("consumer").await;
    let (status, body) = stack.send(reqwest::Method::PATCH, "/api/v2/dags/consumer", &json!({"is_paused": true})).await;
    assert_eq!(status, 200, "{body}");
    for _ in 0..2 {
        let run = stack.trigger("producer", json!({})).await;
        assert_eq!(stack.wait_for_run("producer", &run).await, "success");
    }
    two_more_sweeps(&stack).await;
    assert!(asset_runs(&stack, "consumer").await.is_empty(), "a paused DAG gets no run");
    assert_eq!(count(&stack, "SELECT count(*) FROM asset_queued_events WHERE dag_id = 'consumer'").await, 1);

    let (status, body) =
        stack.send(reqwest::Method::PATCH, "/api/v2/dags/consumer", &json!({"is_paused": false})).await;
    assert_eq!(status, 200, "{body}");
    let runs = wait_for_asset_runs(&stack, "consumer", 1).await;
    assert_eq!(linked_events(&stack, "consumer", &runs[0].0).await.len(), 2, "both waiting events trigger one run");
    two_more_sweeps(&stack).await;
    assert_eq!(asset_runs(&stack, "consumer").await.len(), 1);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_recorded_from_outside_triggers_the_consumer() {
    let stack =
        TestStack::spawn(&[("consumer.yaml", &consumer("consumer", &format!("[{{uri: '{A}', name: orders}}]")))]).await;
    stack.wait_for_dag("consumer").await;
    let mut client = stack.pool.get().await.expect("a database connection");
    let asset_id: i64 = client
        .query_one("SELECT id FROM assets WHERE uri = $1 AND name = 'orders'", &[&A])
        .await
        .expect("the consumer's asset is registered")
        .get(0);
    let tx = client.transaction().await.expect("a transaction");
    let extra = json!({"rows": 42});
    let event = NewAssetEvent {
        asset_id,
        extra: &extra,
        source_dag_id: None,
        source_task_id: None,
        source_run_id: None,
        source_map_index: -1,
        partition_key: None,
    };
    record_event(&tx, &event).await.expect("recording the event");
    tx.commit().await.expect("committing");

    let runs = wait_for_asset_runs(&stack, "consumer", 1).await;
    assert_eq!(linked_events(&stack, "consumer", &runs[0].0).await, [(A.to_string(), None, None)]);
    assert_eq!(stack.wait_for_run("consumer", &runs[0].0).await, "success");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_schedulers_consume_every_event_exactly_once() {
    const PRODUCER_RUNS: usize = 8;
    let engineless = StackOptions { in_process_engine: false, ..StackOptions::default() };
    let stack = TestStack::spawn_with(
        &[
            ("producer.yaml", &producer("producer", A, "echo made")),
            ("consumer.yaml", &consumer("consumer", &format!("['{A}']"))),
        ],
        engineless,
    )
    .await;
    let _schedulers: Vec<_> =
        (1..=2).map(|i| stack.start_process("gust-scheduler", &format!("scheduler-{i}"))).collect();
    let _workers: Vec<_> = (1..=2).map(|i| stack.start_process("gust-worker", &format!("worker-{i}"))).collect();
    stack.wait_for_dag("consumer").await;
    let mut producer_runs = Vec::new();
    for _ in 0..PRODUCER_RUNS {
        producer_runs.push(stack.trigger("producer", json!({})).await);
    }
    for run in &producer_runs {
        assert_eq!(stack.wait_for_run("producer", run).await, "success");
    }
    stack
        .eventually("every event to be consumed", || async {
            let linked = count(&stack, "SELECT count(*) FROM dag_run_asset_events").await;
            (linked >= PRODUCER_RUNS as i64).then_some(())
        })
        .await;
    two_more_sweeps(&stack).await;

    let events = count(&stack, "SELECT count(*) FROM asset_events").await;
    let links = count(&stack, "SELECT count(*) FROM dag_run_asset_events").await;
    let distinct = count(&stack, "SELECT count(DISTINCT event_id) FROM dag_run_asset_events").await;
    assert_eq!((events, links, distinct), (PRODUCER_RUNS as i64, PRODUCER_RUNS as i64, PRODUCER_RUNS as i64));
    let runs = asset_runs(&stack, "consumer").await;
    assert!((1..=PRODUCER_RUNS).contains(&runs.len()), "{} runs for {PRODUCER_RUNS} events", runs.len());
    let empty = count(
        &stack,
        "SELECT count(*) FROM dag_runs r WHERE r.dag_id = 'consumer' \
         AND NOT EXISTS (SELECT 1 FROM dag_run_asset_events l WHERE l.run_pk = r.id)",
    )
    .await;
    assert_eq!(empty, 0, "every run was triggered by at least one event");
    assert_eq!(count(&stack, "SELECT count(*) FROM asset_queued_events").await, 0);
    stack.stop().await;
}
