//! Trigger rules against the real services: a failure handled downstream,
//! and a skip that cascades down a chain.

use std::collections::BTreeMap;

use gust_tests::TestStack;
use serde_json::json;

const HANDLED: &str = r#"
dag_id: handled
tasks:
  - {id: work, operator: bash, command: exit 3}
  - {id: cleanup, operator: noop, depends_on: [work], trigger_rule: all_done}
"#;

const SKIPPING: &str = r#"
dag_id: skipping
tasks:
  - {id: ok, operator: noop}
  - {id: on_failure, operator: noop, depends_on: [ok], trigger_rule: one_failed}
  - {id: then_1, operator: noop, depends_on: [on_failure]}
  - {id: then_2, operator: noop, depends_on: [then_1]}
  - {id: always, operator: noop, depends_on: [then_2], trigger_rule: always}
"#;

fn states(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failure_cleaned_up_by_an_all_done_task_ends_the_run_in_success_and_a_skip_cascades_down_a_chain() {
    let stack = TestStack::spawn(&[("handled.yaml", HANDLED), ("skipping.yaml", SKIPPING)]).await;
    stack.wait_for_dag("handled").await;
    stack.wait_for_dag("skipping").await;

    let handled = stack.trigger("handled", json!({})).await;
    assert_eq!(stack.wait_for_run("handled", &handled).await, "success", "the only leaf, cleanup, succeeded");
    assert_eq!(stack.task_states("handled", &handled).await, states(&[("work", "failed"), ("cleanup", "success")]));

    let skipping = stack.trigger("skipping", json!({})).await;
    assert_eq!(stack.wait_for_run("skipping", &skipping).await, "success");
    assert_eq!(
        stack.task_states("skipping", &skipping).await,
        states(&[
            ("ok", "success"),
            ("on_failure", "skipped"),
            ("then_1", "skipped"),
            ("then_2", "skipped"),
            ("always", "success")
        ])
    );
    stack.stop().await;
}
