//! Dynamic task mapping: a task with `expand` runs once per element of a
//! list from the DAG file, a param or an upstream XCom.

use gust_tests::TestStack;
use serde_json::{json, Value};

/// `(map_index, state)` of every instance of `task_id`, by map index.
async fn mapped(stack: &TestStack, dag_id: &str, run_id: &str, task_id: &str) -> Vec<(i64, String)> {
    let mut found: Vec<(i64, String)> = stack
        .task_instances(dag_id, run_id)
        .await
        .into_iter()
        .filter(|ti| ti["task_id"] == task_id)
        .map(|ti| (ti["map_index"].as_i64().unwrap(), ti["state"].as_str().unwrap_or("none").to_string()))
        .collect();
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_task_mapped_over_an_upstream_xcom_runs_once_per_element_and_its_results_flow_on_as_a_list() {
    let dag = r#"
dag_id: fan
tasks:
  - id: list_files
    operator: bash
    command: echo '["a.csv", "b.csv", "c.csv"]' > "$GUST_XCOM"
  - id: each
    operator: bash
    command: echo "processing {{ item }} as $GUST_MAP_ITEM index {{ ti.map_index }}"; echo "done-{{ item }}"
    do_xcom_push: true
    expand: {xcom: list_files}
  - id: summary
    operator: bash
    command: echo "results {{ ti.xcom_pull('each') | join(',') }}"
    depends_on: [each]
"#;
    let stack = TestStack::spawn(&[("fan.yaml", dag)]).await;
    let run_id = stack.trigger("fan", json!({})).await;
    assert_eq!(stack.wait_for_run("fan", &run_id).await, "success");

    let each = mapped(&stack, "fan", &run_id, "each").await;
    assert_eq!(each, [(0, "success".into()), (1, "success".into()), (2, "success".into())]);
    let (status, second) =
        stack.get(&format!("/api/v2/dags/fan/dagRuns/{run_id}/taskInstances/each/logs/1?map_index=1")).await;
    assert_eq!(status, 200, "{second}");
    assert!(second.to_string().contains("processing b.csv as b.csv index 1"), "{second}");
    let summary = stack.log_text("fan", &run_id, "summary", 1).await;
    assert!(summary.contains("results done-a.csv,done-b.csv,done-c.csv"), "{summary}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_task_mapped_over_a_param_takes_the_list_from_the_trigger_conf() {
    let dag = r#"
dag_id: regions
params:
  regions: {type: array, default: [eu]}
tasks:
  - {id: sync, operator: bash, command: "echo syncing {{ item }}", expand: {param: regions}}
  - {id: literal, operator: bash, command: "echo {{ item.n }}", expand: [{n: 1}, {n: 2}]}
"#;
    let stack = TestStack::spawn(&[("regions.yaml", dag)]).await;
    let run_id = stack.trigger("regions", json!({"regions": ["eu", "us", "ap", "sa"]})).await;
    assert_eq!(stack.wait_for_run("regions", &run_id).await, "success");
    assert_eq!(mapped(&stack, "regions", &run_id, "sync").await.len(), 4);
    assert_eq!(mapped(&stack, "regions", &run_id, "literal").await, [(0, "success".into()), (1, "success".into())]);

    let defaults = stack.trigger("regions", json!({})).await;
    assert_eq!(stack.wait_for_run("regions", &defaults).await, "success");
    assert_eq!(mapped(&stack, "regions", &defaults, "sync").await, [(0, "success".into())]);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_empty_list_skips_the_mapped_task_and_a_non_list_fails_it_with_the_reason() {
    let dag = r#"
dag_id: edge
tasks:
  - {id: nothing, operator: bash, command: "echo '[]' > \"$GUST_XCOM\""}
  - {id: per_nothing, operator: noop, expand: {xcom: nothing}}
  - {id: after_nothing, operator: noop, depends_on: [per_nothing]}
  - {id: scalar, operator: bash, command: "echo 42 > \"$GUST_XCOM\""}
  - {id: per_scalar, operator: noop, expand: {xcom: scalar}}
"#;
    let stack = TestStack::spawn(&[("edge.yaml", dag)]).await;
    let run_id = stack.trigger("edge", json!({})).await;
    assert_eq!(stack.wait_for_run("edge", &run_id).await, "failed");
    let states = stack.task_states("edge", &run_id).await;
    assert_eq!(states["per_nothing"], "skipped", "{states:?}");
    assert_eq!(states["after_nothing"], "skipped", "{states:?}");
    assert_eq!(states["per_scalar"], "failed", "{states:?}");
    let failed: Value = stack.task_instance("edge", &run_id, "per_scalar").await;
    let reason = failed["failure_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("`expand` needs a list, but the XCom of `scalar` is 42"), "{failed}");
    let log = stack.log_text("edge", &run_id, "per_scalar", 1).await;
    assert!(log.contains("needs a list"), "{log}");
    stack.stop().await;
}
