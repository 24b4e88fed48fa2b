//! Real Python clients against a real gust stack: the official Airflow REST
//! client does what a user's script does, and schemathesis fuzzes every
//! operation of the OpenAPI document looking for server errors and for
//! statuses, content types or bodies the document does not describe (a fixed seed
//! and 20 examples an operation; `GUST_FUZZ_SEED` and `GUST_FUZZ_EXAMPLES`
//! fuzz elsewhere or harder).

use std::time::Duration;

use gust_tests::{python, TestStack, ADMIN_PASSWORD, ADMIN_USER};
use reqwest::Method;
use serde_json::json;

/// A DAG whose first task's log shows the run's conf.
const GREETER: &str = r#"
dag_id: greeter
tags: [compat]
tasks:
  - id: greet
    operator: bash
    command: "echo greeting={{ dag_run.conf.greeting }}"
  - id: done
    operator: noop
    depends_on: [greet]
"#;

/// Longest a Python run may take before the test fails (a hang guard).
const PYTHON_PATIENCE: Duration = Duration::from_secs(600);

/// Runs a Python program to completion; fails the test with its output unless it exits 0.
async fn run_python(what: &str, program: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut command = tokio::process::Command::new(program);
    command.args(args).envs(env.iter().copied()).kill_on_drop(true);
    let output = tokio::time::timeout(PYTHON_PATIENCE, command.output())
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {PYTHON_PATIENCE:?}"))
        .unwrap_or_else(|e| panic!("{what} could not start: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{what} failed ({}):\n{text}", output.status);
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn the_official_airflow_client_logs_in_triggers_with_conf_and_reads_the_log() {
    let venv = tokio::task::spawn_blocking(|| python::venv("airflow-client", python::AIRFLOW_CLIENT)).await.unwrap();
    let stack = TestStack::spawn(&[("greeter.yaml", GREETER)]).await;
    stack.wait_for_dag("greeter").await;
    let output = run_python(
        "tests/python/airflow_client_compat.py",
        &venv.join("bin/python"),
        &[python::script("airflow_client_compat.py").to_str().unwrap()],
        &[
            ("GUST_API", &stack.api),
            ("GUST_USERNAME", ADMIN_USER),
            ("GUST_PASSWORD", ADMIN_PASSWORD),
            ("GUST_DAG_ID", "greeter"),
            ("GUST_TASK_ID", "greet"),
        ],
    )
    .await;
    assert!(output.contains("airflow client compatibility: OK"), "{output}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_server_error_and_no_answer_the_document_does_not_describe() {
    let venv = tokio::task::spawn_blocking(|| python::venv("schemathesis", python::SCHEMATHESIS)).await.unwrap();
    let stack = TestStack::spawn(&[("greeter.yaml", GREETER)]).await;
    stack.wait_for_dag("greeter").await;
    let (status, run) = stack
        .send(
            Method::POST,
            "/api/v2/dags/greeter/dagRuns",
            &json!({"dag_run_id": "fuzz-run", "conf": {"greeting": "fuzz"}}),
        )
        .await;
    assert_eq!(status, 200, "{run}");
    stack.wait_for_run("greeter", "fuzz-run").await;
    for (path, body) in [
        ("/api/v2/pools", json!({"name": "fuzz_pool", "slots": 2})),
        ("/api/v2/variables", json!({"key": "fuzz_var", "value": "v"})),
    ] {
        let (status, reply) = stack.send(Method::POST, path, &body).await;
        assert_eq!(status, 201, "{path}: {reply}");
    }
    let schema = format!("{}/openapi.json", stack.api);
    let report = std::env::temp_dir().join(format!("{}-schemathesis.json", stack.settings.amqp.namespace));
    let args = python::SchemathesisRun {
        config: "schemathesis.toml",
        schema: &schema,
        api: &stack.api,
        token: &stack.token,
        // Besides server errors and answers the document does not describe: a request the
        // document calls valid must be accepted, one it calls invalid refused with a 4xx
        // (schemathesis's default statuses for both; tests/python/schemathesis.toml says
        // where and why an operation differs).
        checks: "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance,\
                 positive_data_acceptance,negative_data_rejection",
        default_examples: 20,
        report: &report,
    }
    .args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = run_python("schemathesis", &venv.join("bin/schemathesis"), &args, &[]).await;
    println!("{output}");
    // Every operation of the document must have been tested: one schemathesis
    // skipped (or could not parse) would otherwise pass unchecked.
    let (status, document) = stack.get("/openapi.json").await;
    assert_eq!(status, 200, "{document}");
    let in_document: usize = document["paths"]
        .as_object()
        .expect("paths in the OpenAPI document")
        .values()
        .map(|item| {
            ["get", "put", "post", "delete", "patch", "head"].iter().filter(|m| item.get(**m).is_some()).count()
        })
        .sum();
    let text = std::fs::read_to_string(&report).unwrap_or_else(|e| panic!("reading {}: {e}", report.display()));
    let _ = std::fs::remove_file(&report);
    let summary: serde_json::Value = serde_json::from_str(&text).expect("schemathesis's JSON report");
    let operations = &summary["operations"];
    assert_eq!(
        (operations["total"].as_u64(), operations["tested"].as_u64()),
        (Some(in_document as u64), Some(in_document as u64)),
        "schemathesis must test every one of the document's {in_document} operations: {operations}\n{output}"
    );
    stack.stop().await;
}
