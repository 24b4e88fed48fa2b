//! Airflow's `dags_are_paused_at_creation`: a DAG the scheduler stores for the
//! first time starts paused unless its file or the setting says otherwise, and
//! later parses never change `is_paused`; `PUT /parseDagFile/{file_token}`
//! makes the scheduler parse a file again at once.

use std::time::Duration;

use chrono::{Days, Utc};
use gust_tests::{StackOptions, TestStack};
use serde_json::json;

/// A stack that pauses new DAGs (Airflow's default), without workers so runs stay put.
fn pausing() -> StackOptions {
    StackOptions { workers: 0, dags_are_paused_at_creation: Some(true), ..StackOptions::default() }
}

/// A daily DAG that started `days_ago` days ago, with catchup, and an optional `is_paused_upon_creation`.
fn catchup_dag(dag_id: &str, days_ago: u64, paused_upon_creation: Option<bool>) -> String {
    let start = (Utc::now().date_naive() - Days::new(days_ago)).format("%Y-%m-%d");
    let flag = paused_upon_creation.map(|p| format!("is_paused_upon_creation: {p}\n")).unwrap_or_default();
    format!("dag_id: {dag_id}\nschedule: '@daily'\nstart_date: {start}\ncatchup: true\n{flag}tasks:\n  - {{id: a, operator: noop}}\n")
}

async fn run_count(stack: &TestStack, dag_id: &str) -> i64 {
    let (status, body) = stack.get(&format!("/api/v2/dags/{dag_id}/dagRuns")).await;
    assert_eq!(status, 200, "{body}");
    body["total_entries"].as_i64().expect("total_entries")
}

#[tokio::test]
async fn a_new_dag_is_paused_by_default_and_the_dag_flag_wins_over_the_setting() {
    let stack = TestStack::spawn_with(
        &[("plain.yaml", &catchup_dag("plain", 3, None)), ("eager.yaml", &catchup_dag("eager", 3, Some(false)))],
        pausing(),
    )
    .await;
    assert_eq!(stack.wait_for_dag("plain").await["is_paused"], true, "paused per the setting");
    assert_eq!(stack.wait_for_dag("eager").await["is_paused"], false, "the DAG's own flag wins");
    stack
        .eventually("the unpaused DAG to catch up", || async { (run_count(&stack, "eager").await >= 3).then_some(()) })
        .await;
    stack.stop().await;

    let unpausing = StackOptions { dags_are_paused_at_creation: Some(false), ..pausing() };
    let stack = TestStack::spawn_with(&[("shy.yaml", &catchup_dag("shy", 3, Some(true)))], unpausing).await;
    assert_eq!(stack.wait_for_dag("shy").await["is_paused"], true, "the DAG's flag wins over `false` too");
    stack.stop().await;
}

#[tokio::test]
async fn a_catchup_dag_paused_at_creation_creates_no_runs_until_unpaused_and_a_new_version_keeps_it_paused() {
    let stack = TestStack::spawn_with(&[("late.yaml", &catchup_dag("late", 3, None))], pausing()).await;
    assert_eq!(stack.wait_for_dag("late").await["is_paused"], true);
    // Several safety sweeps (2 s each in tests) and rescans pass without a run.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(run_count(&stack, "late").await, 0, "a paused DAG gets no scheduled runs");

    // A changed file is a new version; it does not unpause the DAG.
    std::fs::write(stack.dag_path("late.yaml"), catchup_dag("late", 3, None).replace("id: a", "id: bb")).unwrap();
    stack
        .eventually("the second version", || async {
            let (_, body) = stack.get("/api/v2/dags/late/dagVersions").await;
            (body["total_entries"] == 2).then_some(())
        })
        .await;
    assert_eq!(stack.get("/api/v2/dags/late").await.1["is_paused"], true, "later parses never change is_paused");

    let (status, body) = stack.send(reqwest::Method::PATCH, "/api/v2/dags/late", &json!({"is_paused": false})).await;
    assert_eq!(status, 200, "{body}");
    stack.eventually("the catch-up runs", || async { (run_count(&stack, "late").await >= 3).then_some(()) }).await;
    stack.stop().await;
}

#[tokio::test]
async fn reparsing_a_dag_file_through_the_api_parses_it_again_at_once() {
    let options =
        StackOptions { workers: 0, rescan_interval: Some(Duration::from_secs(3600)), ..StackOptions::default() };
    let stack = TestStack::spawn_with(&[("etl.yaml", &catchup_dag("etl", 1, None))], options).await;
    let dag = stack.wait_for_dag("etl").await;
    let client = stack.pool.get().await.unwrap();
    client.execute("UPDATE dags SET last_parsed_at = '2000-01-01T00:00:00Z' WHERE dag_id = 'etl'", &[]).await.unwrap();

    let token = dag["file_token"].as_str().expect("file_token");
    let (status, body) = stack.send(reqwest::Method::PUT, &format!("/api/v2/parseDagFile/{token}"), &json!(null)).await;
    assert_eq!((status, body), (201, json!(null)));
    stack
        .eventually("the file to be parsed again", || async {
            let (_, body) = stack.get("/api/v2/dags/etl").await;
            (!body["last_parsed_time"].as_str().unwrap_or_default().starts_with("2000")).then_some(())
        })
        .await;
    stack.stop().await;
}
