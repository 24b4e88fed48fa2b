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

/// The admin the fuzzer acts as: a name no example of the document uses.
const FUZZ_ADMIN: &str = "schemathesis-fuzzer";
/// Its password.
const FUZZ_ADMIN_PASSWORD: &str = "a-password-for-the-fuzzer";

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
    // The fuzzer acts as an admin of its own: it deletes and changes `admin`
    // (the user the document's examples name), which voids that user's tokens.
    let fuzzer = json!({"username": FUZZ_ADMIN, "password": FUZZ_ADMIN_PASSWORD, "role": "admin"});
    let (status, user) = stack.send(Method::POST, "/api/v2/gust/users", &fuzzer).await;
    assert_eq!(status, 201, "{user}");
    let token = gust_tests::login(&stack.api, FUZZ_ADMIN, FUZZ_ADMIN_PASSWORD).await;
    // Every operation of the document must be tested: one schemathesis skipped
    // (or could not parse) would otherwise pass unchecked.
    let (status, document) = stack.get("/openapi.json").await;
    assert_eq!(status, 200, "{document}");
    let in_document: u64 = document["paths"]
        .as_object()
        .expect("paths in the OpenAPI document")
        .values()
        .map(|item| {
            ["get", "put", "post", "delete", "patch", "head"].iter().filter(|m| item.get(**m).is_some()).count()
        })
        .sum::<usize>() as u64;
    // Changing or deleting a user voids their tokens, and schemathesis learns
    // user names from the listings, its own included: those two operations run
    // last, on their own, so they cannot void the token the rest runs with.
    let user_changes = ["--include-name", USER_PATCH, "--include-name", USER_DELETE];
    let everything_else = ["--exclude-name", USER_PATCH, "--exclude-name", USER_DELETE];
    let mut tested = 0;
    for (part, filter) in [("rest", everything_else), ("user-changes", user_changes)] {
        let (output, operations) = fuzz(&stack, &venv, &token, part, &filter).await;
        tested += operations["tested"].as_u64().unwrap_or_default();
        if part == "rest" {
            // A token voided halfway would leave the rest of the run testing only 401s.
            let (status, _) = stack.get_as(&token, "/api/v2/dags").await;
            assert_eq!(status, 200, "the fuzzer's token stopped working during the run\n{output}");
        }
    }
    assert_eq!(tested, in_document, "schemathesis must test every one of the document's {in_document} operations");
    stack.stop().await;
}

/// `PATCH` of a user, by schemathesis's name for it.
const USER_PATCH: &str = "PATCH /api/v2/gust/users/{username}";
/// `DELETE` of a user, by schemathesis's name for it.
const USER_DELETE: &str = "DELETE /api/v2/gust/users/{username}";

/// Runs schemathesis with gust's own document on the operations `filter` selects,
/// as `token`; fails on any failure, and returns its output and the report's operation counts.
async fn fuzz(
    stack: &TestStack,
    venv: &std::path::Path,
    token: &str,
    part: &str,
    filter: &[&str],
) -> (String, serde_json::Value) {
    let schema = format!("{}/openapi.json", stack.api);
    let report = std::env::temp_dir().join(format!("{}-schemathesis-{part}.json", stack.settings.amqp.namespace));
    let mut args = python::SchemathesisRun {
        config: "schemathesis.toml",
        schema: &schema,
        api: &stack.api,
        token,
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
    args.extend(filter.iter().map(|arg| arg.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = run_python("schemathesis", &venv.join("bin/schemathesis"), &args, &[]).await;
    println!("{output}");
    let text = std::fs::read_to_string(&report).unwrap_or_else(|e| panic!("reading {}: {e}", report.display()));
    let _ = std::fs::remove_file(&report);
    let summary: serde_json::Value = serde_json::from_str(&text).expect("schemathesis's JSON report");
    (output, summary["operations"].clone())
}
