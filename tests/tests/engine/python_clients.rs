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
    let header = format!("Authorization: Bearer {}", stack.token);
    let examples = std::env::var("GUST_FUZZ_EXAMPLES").unwrap_or_else(|_| "20".into());
    let seed = std::env::var("GUST_FUZZ_SEED").unwrap_or_else(|_| "7".into());
    let schema = format!("{}/openapi.json", stack.api);
    let output = run_python(
        "schemathesis",
        &venv.join("bin/schemathesis"),
        &[
            "--config-file",
            python::script("schemathesis.toml").to_str().unwrap(),
            "run",
            &schema,
            "--url",
            &stack.api,
            "--checks",
            "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            &examples,
            "--workers",
            "2",
            "--header",
            &header,
            "--seed",
            &seed,
            "--no-color",
        ],
        &[],
    )
    .await;
    println!("{output}");
    stack.stop().await;
}
