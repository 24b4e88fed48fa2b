//! Tasks hand values to each other: XComs pushed by one task reach the next
//! task's command through templates, branch tasks choose what runs, and a
//! template error fails only its task.

use std::collections::BTreeMap;

use gust_tests::TestStack;
use serde_json::json;

fn states(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn xcom_flows_from_one_tasks_output_into_the_next_tasks_command() {
    let dag = r#"
dag_id: handoff
params: {region: eu}
tasks:
  - id: count
    operator: bash
    command: |
      echo noise; echo '{"rows": 42, "files": ["a.csv", "b.csv"]}'
    do_xcom_push: true
  - id: file_push
    operator: bash
    command: |
      echo "[1, 2, 3]" > "$GUST_XCOM"; echo not the xcom
  - id: report
    operator: bash
    command: >-
      echo "rows={{ ti.xcom_pull('count').rows }} first={{ ti.xcom_pull(task_ids='count')['files'][0] }}
      list={{ ti.xcom_pull('file_push') | join('-') }} region={{ params.region }} run={{ run_id }}
      try={{ ti.try_number }}"
    depends_on: [count, file_push]
"#;
    let stack = TestStack::spawn(&[("handoff.yaml", dag)]).await;
    let run_id = stack.trigger("handoff", json!({"region": "us"})).await;
    assert_eq!(stack.wait_for_run("handoff", &run_id).await, "success");

    let log = stack.log_text("handoff", &run_id, "report", 1).await;
    assert!(log.contains(&format!("rows=42 first=a.csv list=1-2-3 region=us run={run_id} try=1")), "{log}");

    let base = format!("/api/v2/dags/handoff/dagRuns/{run_id}/taskInstances");
    let (status, entries) = stack.get(&format!("{base}/count/xcomEntries")).await;
    assert_eq!(status, 200, "{entries}");
    assert_eq!(entries["total_entries"], 1, "{entries}");
    assert_eq!(entries["xcom_entries"][0]["key"], "return_value", "{entries}");
    let (status, entry) = stack.get(&format!("{base}/count/xcomEntries/return_value")).await;
    assert_eq!(status, 200, "{entry}");
    assert_eq!(entry["value"], json!({"rows": 42, "files": ["a.csv", "b.csv"]}), "{entry}");
    let (status, entry) = stack.get(&format!("{base}/file_push/xcomEntries/return_value")).await;
    assert_eq!((status, &entry["value"]), (200, &json!([1, 2, 3])), "{entry}");

    let (status, missing) = stack.get(&format!("{base}/report/xcomEntries/return_value")).await;
    assert_eq!(status, 404, "{missing}");
    assert!(missing["detail"].as_str().unwrap().contains("no XCom with key `return_value`"), "{missing}");

    let report = stack.task_instance("handoff", &run_id, "report").await;
    let rendered = report["rendered_fields"]["command"].as_str().unwrap_or_default();
    assert!(rendered.contains("rows=42"), "rendered fields are visible through the API: {report}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn branch_runs_the_chosen_path_and_skips_the_other_until_the_join() {
    let dag = r#"
dag_id: branchy
tasks:
  - id: choose
    operator: branch
    command: "{% if dag_run.conf.big is defined and dag_run.conf.big %}echo big_path{% else %}echo small_path{% endif %}"
  - {id: big_path, operator: noop, depends_on: [choose]}
  - {id: big_followup, operator: noop, depends_on: [big_path]}
  - {id: small_path, operator: noop, depends_on: [choose]}
  - {id: join, operator: noop, depends_on: [big_followup, small_path], trigger_rule: none_failed_min_one_success}
  - {id: strict_join, operator: noop, depends_on: [big_followup, small_path]}
"#;
    let stack = TestStack::spawn(&[("branchy.yaml", dag)]).await;
    let run_id = stack.trigger("branchy", json!({})).await;
    assert_eq!(stack.wait_for_run("branchy", &run_id).await, "success");
    assert_eq!(
        stack.task_states("branchy", &run_id).await,
        states(&[
            ("choose", "success"),
            ("big_path", "skipped"),
            ("big_followup", "skipped"),
            ("small_path", "success"),
            ("join", "success"),
            ("strict_join", "skipped"),
        ])
    );

    let run_id = stack.trigger("branchy", json!({"big": true})).await;
    assert_eq!(stack.wait_for_run("branchy", &run_id).await, "success");
    let states = stack.task_states("branchy", &run_id).await;
    assert_eq!((states["big_path"].as_str(), states["small_path"].as_str()), ("success", "skipped"), "{states:?}");
    assert_eq!(states["join"], "success", "{states:?}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn template_error_fails_its_task_with_the_error_in_its_log_and_the_scheduler_keeps_going() {
    let dag = r#"
dag_id: typo
tasks:
  - {id: fine, operator: bash, command: "echo {{ ds }}"}
  - {id: broken, operator: bash, command: "echo {{ no_such_variable }}", depends_on: [fine]}
  - {id: after, operator: noop, depends_on: [broken]}
"#;
    let stack = TestStack::spawn(&[("typo.yaml", dag)]).await;
    let run_id = stack.trigger("typo", json!({})).await;
    assert_eq!(stack.wait_for_run("typo", &run_id).await, "failed");
    assert_eq!(
        stack.task_states("typo", &run_id).await,
        states(&[("fine", "success"), ("broken", "failed"), ("after", "upstream_failed")])
    );
    let log = stack.log_text("typo", &run_id, "broken", 1).await;
    assert!(log.contains("no_such_variable"), "the log names the undefined variable: {log}");
    let broken = stack.task_instance("typo", &run_id, "broken").await;
    assert!(broken["failure_reason"].as_str().unwrap_or_default().contains("template"), "{broken}");

    // The scheduler is still healthy: another run goes through.
    let again = stack.trigger("typo", json!({})).await;
    assert_eq!(stack.wait_for_run("typo", &again).await, "failed");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn variables_created_through_the_api_reach_templates_and_an_unknown_one_fails_its_task() {
    let dag = r#"
dag_id: uses_vars
tasks:
  - id: show
    operator: bash
    command: "echo bucket={{ var.value.target_bucket }} region={{ var.json.settings.region }}"
  - {id: missing, operator: bash, command: "echo {{ var.value.no_such_key }}"}
"#;
    let stack = TestStack::spawn(&[("uses_vars.yaml", dag)]).await;
    for (key, value) in [("target_bucket", "s3://warehouse"), ("settings", r#"{"region": "eu-west-1"}"#)] {
        let (status, body) =
            stack.send(reqwest::Method::POST, "/api/v2/variables", &json!({"key": key, "value": value})).await;
        assert_eq!(status, 201, "{body}");
    }
    let run_id = stack.trigger("uses_vars", json!({})).await;
    assert_eq!(stack.wait_for_run("uses_vars", &run_id).await, "failed");
    assert_eq!(stack.task_states("uses_vars", &run_id).await, states(&[("show", "success"), ("missing", "failed")]));
    let log = stack.log_text("uses_vars", &run_id, "show", 1).await;
    assert!(log.contains("bucket=s3://warehouse region=eu-west-1"), "{log}");
    let log = stack.log_text("uses_vars", &run_id, "missing", 1).await;
    assert!(
        log.contains("variable `no_such_key`") && log.contains("does not exist"),
        "the log names the variable: {log}"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_secret_variable_reaches_the_task_but_is_masked_in_its_rendered_fields() {
    let dag = r#"
dag_id: uses_secret
tasks:
  - id: connect
    operator: bash
    command: "test '{{ var.value.db_password }}' = hunter2-long && echo connected"
"#;
    let stack = TestStack::spawn(&[("uses_secret.yaml", dag)]).await;
    let (status, body) = stack
        .send(reqwest::Method::POST, "/api/v2/variables", &json!({"key": "db_password", "value": "hunter2-long"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let run_id = stack.trigger("uses_secret", json!({})).await;
    assert_eq!(stack.wait_for_run("uses_secret", &run_id).await, "success", "the task got the real value");
    let ti = stack.task_instance("uses_secret", &run_id, "connect").await;
    let rendered = ti["rendered_fields"].to_string();
    assert!(rendered.contains("test '***' = ***") && !rendered.contains("hunter2"), "{rendered}");
    let (_, listed) = stack.get(&format!("/api/v2/dags/uses_secret/dagRuns/{run_id}/taskInstances")).await;
    assert!(!listed.to_string().contains("hunter2"), "{listed}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn variable_secrets_are_masked_in_the_task_log_as_airflow_masks_them() {
    let dag = r#"
dag_id: masks_variables
tasks:
  - id: show
    operator: bash
    env:
      QUOTED: "{{ var.value.api_password }}"
      NESTED: "{{ var.json.aws.secret_access_key }}"
      REGION: "{{ var.json.aws.region }}"
      PHRASE: "{{ var.value.ssh_passphrase }}"
      ACCOUNT: "{{ var.value.gcp_service_account }}"
    command: |
      printf 'quoted=%s\n' "$QUOTED"
      printf 'nested=%s region=%s\n' "$NESTED" "$REGION"
      printf 'phrase=%s account=%s\n' "$PHRASE" "$ACCOUNT"
"#;
    let stack = TestStack::spawn(&[("masks_variables.yaml", dag)]).await;
    let secrets = [
        ("api_password", r#"pa"ss\word-1"#),
        ("aws", r#"{"region": "eu-west-1", "secret_access_key": "AKIA-secret-value"}"#),
        ("ssh_passphrase", "correct-horse-battery"),
        ("gcp_service_account", "sa-blob-12345"),
    ];
    for (key, value) in secrets {
        let (status, body) =
            stack.send(reqwest::Method::POST, "/api/v2/variables", &json!({"key": key, "value": value})).await;
        assert_eq!(status, 201, "{body}");
    }
    let run_id = stack.trigger("masks_variables", json!({})).await;
    assert_eq!(stack.wait_for_run("masks_variables", &run_id).await, "success");
    let log = stack.log_text("masks_variables", &run_id, "show", 1).await;
    assert!(log.contains("quoted=***"), "a secret with a quote and a backslash is masked: {log}");
    assert!(log.contains("nested=*** region=eu-west-1"), "a JSON field under a secret name is masked: {log}");
    assert!(log.contains("phrase=*** account=***"), "passphrase and service_account name secrets: {log}");
    for secret in [r#"pa"ss"#, "AKIA-secret", "correct-horse", "sa-blob"] {
        assert!(!log.contains(secret), "{secret} shows in the log: {log}");
    }
    stack.stop().await;
}
