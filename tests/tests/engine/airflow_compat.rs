//! Airflow's own artifacts against a real gust stack: schemathesis checks
//! gust's answers against Airflow 3.3.2's OpenAPI document (every operation
//! of it that gust serves, on seeded DAGs, runs, task instances, XComs,
//! pools, variables and connections), and Airflow's command line client
//! `airflowctl` logs in and works with gust as a user does.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use gust_tests::{airflow_api, python, TestStack, ADMIN_PASSWORD, ADMIN_USER};
use reqwest::Method;
use serde_json::{json, Value};

/// A DAG with a schedule (so it can be backfilled), params, and a task that pushes an XCom.
const COMPAT_DAG: &str = r#"
dag_id: compat
schedule: "@daily"
start_date: 2026-01-01
catchup: false
tags: [compat]
params: {greeting: hello}
tasks:
  - id: produce
    operator: bash
    command: |
      echo "greeting={{ params.greeting }}"; echo '{"rows": 3}'
    do_xcom_push: true
  - id: done
    operator: noop
    depends_on: [produce]
"#;

/// A DAG file with a cycle, so there is an import error to list.
const BROKEN_DAG: &str =
    "dag_id: loops\ntasks:\n  - {id: a, operator: noop, depends_on: [b]}\n  - {id: b, operator: noop, depends_on: [a]}\n";

/// Failures schemathesis reports that are defects of Airflow's own document,
/// not of gust: (operation as schemathesis names it, check, why the document is wrong).
const AIRFLOW_DOCUMENT_DEFECTS: &[(&str, &str, &str)] = &[
    ("GET /api/v2/assets", "ST103", ORDER_BY_400),
    ("GET /api/v2/assets/aliases", "ST103", ORDER_BY_400),
    ("GET /api/v2/assets/events", "ST103", ORDER_BY_400),
    ("GET /api/v2/dags", "ST103", ORDER_BY_400),
    ("GET /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/listMapped", "ST103", ORDER_BY_400),
    ("GET /api/v2/dagWarnings", "ST103", ORDER_BY_400),
    ("GET /api/v2/eventLogs", "ST103", ORDER_BY_400),
    ("POST /api/v2/dags/{dag_id}/dagRuns/list", "ST103", ORDER_BY_400),
    ("POST /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/list", "ST103", ORDER_BY_400),
    ("GET /api/v2/backfills", "ST103", ORDER_BY_400),
    ("GET /api/v2/connections", "ST103", ORDER_BY_400),
    ("GET /api/v2/dagTags", "ST103", ORDER_BY_400),
    ("GET /api/v2/dags/{dag_id}/dagVersions", "ST103", ORDER_BY_400),
    ("GET /api/v2/importErrors", "ST103", ORDER_BY_400),
    ("GET /api/v2/pools", "ST103", ORDER_BY_400),
    ("GET /api/v2/variables", "ST103", ORDER_BY_400),
    (
        "GET /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/logs/{try_number}",
        "ST103",
        "Airflow answers a continuation `token` it did not sign with 400 (\"Bad Signature\"); its document lists \
         404 and 422 but no 400",
    ),
    (
        "DELETE /api/v2/dags/{dag_id}",
        "ST103",
        "Airflow's delete_dag answers 204 No Content; its document lists 200 and no 204",
    ),
    (
        "GET /api/v2/auth/login",
        "ST104",
        "Airflow answers a 307 redirect to the auth manager's login page without a body; its document gives the \
         307 a JSON error body",
    ),
    ("GET /api/v2/auth/login", "ST109", "the same 307 without a body"),
    ("GET /api/v2/auth/logout", "ST104", "Airflow's logout is the same 307 redirect without a body"),
    ("GET /api/v2/auth/logout", "ST109", "the same 307 without a body"),
    (
        "POST /api/v2/connections/enqueue-test",
        "ST108",
        "a body that is not valid JSON gets FastAPI's validation error (`detail` a list of {loc, msg, type}) \
         from Airflow, but this operation's document declares its 422 as HTTPExceptionResponse (`detail` a \
         string or object)",
    ),
];

/// Why a list operation's 400 is a defect of Airflow's document. Note: defects are matched per operation and
/// check, so these also excuse any other undocumented status of the same operation.
const ORDER_BY_400: &str = "Airflow answers an `order_by` naming an unknown field with 400 (\"Ordering with … is \
                            disallowed\"); its document lists no 400 for the operation";

/// Airflow's `wait_dag_run_until_finished`, by schemathesis's name for it.
const WAIT: &str = "GET /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/wait";

/// Longest a Python program may take before the test fails (a hang guard).
const PYTHON_PATIENCE: Duration = Duration::from_secs(900);

/// Runs a program to completion with `env` added to this process's environment
/// (or, with `only_env`, in place of it); returns its exit code, stdout and stderr.
async fn run(program: &Path, args: &[&str], env: &[(&str, &str)], only_env: bool) -> (i32, String, String) {
    let mut command = tokio::process::Command::new(program);
    if only_env {
        command.env_clear();
    }
    command.args(args).envs(env.iter().copied()).kill_on_drop(true);
    let what = format!("{} {}", program.display(), args.join(" "));
    let output = tokio::time::timeout(PYTHON_PATIENCE, command.output())
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {PYTHON_PATIENCE:?}"))
        .unwrap_or_else(|e| panic!("{what} could not start: {e}"));
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A stack holding one of everything the API shows: the `compat` DAG with a
/// finished run `compat-run` (task instances, a `return_value` XCom), an
/// import error, the pool `compat_pool`, the variable `compat_var` and the
/// connection `compat_conn`.
async fn seeded_stack() -> TestStack {
    let stack = TestStack::spawn(&[("compat.yaml", COMPAT_DAG), ("broken.yaml", BROKEN_DAG)]).await;
    stack.wait_for_dag("compat").await;
    let (status, dag) = stack.send(Method::PATCH, "/api/v2/dags/compat", &json!({"is_paused": false})).await;
    assert_eq!(status, 200, "{dag}");
    let (status, run) = stack
        .send(
            Method::POST,
            "/api/v2/dags/compat/dagRuns",
            &json!({"dag_run_id": "compat-run", "logical_date": null, "conf": {"greeting": "seeded"}}),
        )
        .await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(stack.wait_for_run("compat", "compat-run").await, "success");
    for (path, body) in [
        ("/api/v2/pools", json!({"name": "compat_pool", "slots": 3, "description": "seeded"})),
        ("/api/v2/variables", json!({"key": "compat_var", "value": "v", "description": "seeded"})),
        (
            "/api/v2/connections",
            json!({"connection_id": "compat_conn", "conn_type": "http", "host": "example.com", "port": 443}),
        ),
    ] {
        let (status, reply) = stack.send(Method::POST, path, &body).await;
        assert_eq!(status, 201, "{path}: {reply}");
    }
    stack
        .eventually("the broken DAG file's import error", || async {
            let (status, errors) = stack.get("/api/v2/importErrors").await;
            (status == 200 && errors["total_entries"].as_u64() > Some(0)).then_some(())
        })
        .await;
    stack
}

#[tokio::test(flavor = "multi_thread")]
async fn gust_answers_as_airflows_own_openapi_document_says_for_every_operation_it_serves() {
    let venv = tokio::task::spawn_blocking(|| python::venv("schemathesis", python::SCHEMATHESIS)).await.unwrap();
    let airflow_path = tokio::task::spawn_blocking(python::airflow_openapi_document).await.unwrap();
    let airflow = tokio::task::spawn_blocking(airflow_api::airflow_document).await.unwrap();
    let stack = seeded_stack().await;
    let (status, gust) = stack.get("/openapi.json").await;
    assert_eq!(status, 200, "{gust}");
    let served = airflow_api::served(&airflow, &gust);
    assert!(served.len() >= 30, "gust serves only {} of Airflow's operations: {served:#?}", served.len());

    // `…/wait` streams until its run finishes, and the rest of the run may leave a run
    // that cannot (its pool shrunk to 0 slots, its DAG paused): it runs first, on its own.
    let (waits, rest): (Vec<_>, Vec<_>) = served.iter().map(|o| o.name()).partition(|name| name == WAIT);
    let mut output = String::new();
    let mut tested = 0;
    let mut errors = Vec::new();
    let mut failures = Vec::new();
    for (part, operations) in [("wait", waits), ("rest", rest)] {
        let report =
            std::env::temp_dir().join(format!("{}-airflow-schemathesis-{part}.json", stack.settings.amqp.namespace));
        let mut args = python::SchemathesisRun {
            config: "airflow_schemathesis.toml",
            schema: airflow_path.to_str().unwrap(),
            api: &stack.api,
            token: &stack.token,
            checks: "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance",
            default_examples: 10,
            report: &report,
        }
        .args();
        for operation in operations {
            args.extend(["--include-name".to_string(), operation]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (_, stdout, stderr) = run(&venv.join("bin/schemathesis"), &args, &[], false).await;
        let part_output = format!("{stdout}{stderr}");
        println!("{part_output}");
        let text = std::fs::read_to_string(&report)
            .unwrap_or_else(|e| panic!("reading {}: {e}\n{part_output}", report.display()));
        let _ = std::fs::remove_file(&report);
        let summary: Value = serde_json::from_str(&text).expect("schemathesis's JSON report");
        tested += summary["operations"]["tested"].as_u64().unwrap_or_default();
        errors.extend(summary["errors"].as_array().into_iter().flatten().cloned());
        failures.extend(summary["failures"].as_array().expect("failures in the report").iter().cloned());
        output.push_str(&part_output);
    }
    assert_eq!(
        tested,
        served.len() as u64,
        "schemathesis must test every one of the {} operations gust serves\n{output}",
        served.len()
    );
    // An error (a connection the server dropped, a request that could not be sent) is never excused.
    let mut unexplained: Vec<String> =
        errors.iter().map(|error| format!("error: {} ({}×)", error["title"], error["count"])).collect();
    for failure in &failures {
        let check = failure["code"].as_str().or(failure["type"].as_str()).unwrap_or_default();
        for operation in failure["operations"].as_array().into_iter().flatten() {
            let operation = operation.as_str().unwrap_or_default();
            let known = AIRFLOW_DOCUMENT_DEFECTS.iter().any(|(o, c, _)| *o == operation && *c == check);
            if !known {
                unexplained.push(format!("{operation}: {check} ({})", failure["title"]));
            }
        }
    }
    assert!(
        unexplained.is_empty(),
        "{output}\nanswers Airflow's document does not allow (each operation once per check):\n{}",
        unexplained.join("\n")
    );
    stack.stop().await;
}

/// `airflowctl` in its own virtualenv, with a home of its own: its config
/// (`AIRFLOW_HOME/production.json`, the API's URL) and its token (in a
/// plain-file keyring from keyrings.alt, as no desktop keyring runs here)
/// never touch the user's home.
struct AirflowCtl {
    program: PathBuf,
    home: PathBuf,
}

impl AirflowCtl {
    async fn install() -> AirflowCtl {
        let venv = tokio::task::spawn_blocking(|| {
            python::venv_with("airflowctl", &[python::AIRFLOW_CTL, python::KEYRINGS_ALT])
        })
        .await
        .unwrap();
        let home = std::env::temp_dir().join(format!("gust-airflowctl-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&home).unwrap_or_else(|e| panic!("creating {}: {e}", home.display()));
        AirflowCtl { program: venv.join("bin/airflowctl"), home }
    }

    /// Runs `airflowctl args…`; returns exit code and stdout+stderr.
    async fn run(&self, args: &[&str]) -> (i32, String) {
        let home = self.home.to_str().unwrap();
        let airflow_home = self.home.join("airflow");
        let data_home = self.home.join("share");
        let config_home = self.home.join("config");
        let (code, stdout, stderr) = run(
            &self.program,
            args,
            &[
                ("HOME", home),
                ("AIRFLOW_HOME", airflow_home.to_str().unwrap()),
                ("XDG_DATA_HOME", data_home.to_str().unwrap()),
                ("XDG_CONFIG_HOME", config_home.to_str().unwrap()),
                ("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring"),
                ("AIRFLOW_CLI_API_RETRIES", "1"),
                ("COLUMNS", "200"),
                ("LANG", "C.UTF-8"),
            ],
            true,
        )
        .await;
        (code, format!("{stdout}{stderr}"))
    }

    /// Runs `airflowctl args…`, which must succeed; returns its output.
    async fn ok(&self, args: &[&str]) -> String {
        let (code, output) = self.run(args).await;
        assert_eq!(code, 0, "airflowctl {} failed:\n{output}", args.join(" "));
        output
    }

    /// Runs `airflowctl args… --output json`, which must succeed; returns the JSON it printed.
    async fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["--output", "json"]);
        let output = self.ok(&args).await;
        let start = output.find(['[', '{']).unwrap_or_else(|| panic!("no JSON in `{}`:\n{output}", args.join(" ")));
        let mut values = serde_json::Deserializer::from_str(&output[start..]).into_iter::<Value>();
        match values.next() {
            Some(Ok(value)) => value,
            other => panic!("airflowctl {} printed no JSON ({other:?}):\n{output}", args.join(" ")),
        }
    }
}

impl AirflowCtl {
    /// Runs a command that shows one object (airflowctl prints it as a list of one); returns that object.
    async fn one(&self, args: &[&str]) -> Value {
        match self.json(args).await {
            Value::Array(mut one) if one.len() == 1 => one.remove(0),
            other => other,
        }
    }
}

/// A field as airflowctl prints it: numbers and booleans come out as strings ("6", "True").
fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

impl Drop for AirflowCtl {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// The objects of a list airflowctl printed: a list of them, or a collection (`{"dag_runs": […],
/// "total_entries"}`, printed as a list of one).
fn items(value: &Value) -> Vec<Value> {
    let collection = |fields: &serde_json::Map<String, Value>| {
        ["total_entries", "next_cursor"].iter().any(|key| fields.contains_key(*key)).then(|| {
            fields.values().find_map(|v| v.as_array().cloned()).unwrap_or_else(|| panic!("no list in {value}"))
        })
    };
    match value {
        Value::Array(list) => match list.as_slice() {
            [Value::Object(fields)] => collection(fields).unwrap_or_else(|| list.clone()),
            _ => list.clone(),
        },
        Value::Object(fields) => collection(fields).unwrap_or_else(|| panic!("no list in {value}")),
        _ => panic!("no list in {value}"),
    }
}

fn names(list: &Value, field: &str) -> Vec<String> {
    items(list).iter().filter_map(|item| item[field].as_str().map(String::from)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn airflowctl_logs_in_with_a_password_and_manages_dags_runs_xcoms_pools_variables_and_connections() {
    let ctl = AirflowCtl::install().await;
    let stack = seeded_stack().await;

    let output = ctl
        .ok(&["auth", "login", "--api-url", &stack.api, "--username", ADMIN_USER, "--password", ADMIN_PASSWORD])
        .await;
    assert!(output.contains("Login successful"), "{output}");
    let keyring =
        std::fs::read_dir(ctl.home.join("share/python_keyring")).map(|entries| entries.count()).unwrap_or_default();
    assert!(keyring > 0, "the token is in the test's own file keyring, under its temporary home");

    let version = ctl.ok(&["version", "--remote"]).await;
    assert!(version.contains(env!("CARGO_PKG_VERSION")) || version.to_lowercase().contains("version"), "{version}");

    let dags = ctl.json(&["dags", "list"]).await;
    assert!(names(&dags, "dag_id").contains(&"compat".to_string()), "{dags}");
    let dag = ctl.one(&["dags", "get", "compat"]).await;
    assert_eq!(dag["dag_id"], "compat", "{dag}");
    ctl.ok(&["dags", "pause", "compat"]).await;
    assert_eq!(stack.get("/api/v2/dags/compat").await.1["is_paused"], true);
    ctl.ok(&["dags", "unpause", "compat"]).await;
    assert_eq!(stack.get("/api/v2/dags/compat").await.1["is_paused"], false);

    // airflowctl 0.1.5 cannot send a conf: its `--conf` option is declared `type=dict`, and argparse's
    // `dict("…")` refuses every string. The run takes the DAG's params; the official client test sends conf.
    let run = ctl.one(&["dags", "trigger", "compat", "--dag-run-id", "ctl-run"]).await;
    assert_eq!(text(&run["dag_run_id"]), "ctl-run", "{run}");
    assert_eq!(stack.wait_for_run("compat", "ctl-run").await, "success");
    let log = stack.log_text("compat", "ctl-run", "produce", 1).await;
    assert!(log.contains("greeting=hello"), "{log}");
    let runs = ctl.json(&["dagrun", "list", "--dag-id", "compat"]).await;
    assert!(names(&runs, "dag_run_id").contains(&"ctl-run".to_string()), "{runs}");
    let got = ctl.one(&["dagrun", "get", "compat", "ctl-run"]).await;
    assert_eq!((got["state"].as_str(), got["dag_run_id"].as_str()), (Some("success"), Some("ctl-run")), "{got}");

    let xcoms = ctl.json(&["xcom", "list", "compat", "ctl-run", "produce"]).await;
    assert!(names(&xcoms, "key").contains(&"return_value".to_string()), "{xcoms}");
    let xcom = ctl.one(&["xcom", "get", "compat", "ctl-run", "produce", "return_value"]).await;
    // airflowctl 0.1.5 prints a JSON object XCom value as its last scalar ("3" for {"rows": 3}); the API has it whole.
    assert_eq!((text(&xcom["key"]), text(&xcom["value"])), ("return_value".into(), "3".into()), "{xcom}");
    let api = stack.get("/api/v2/dags/compat/dagRuns/ctl-run/taskInstances/produce/xcomEntries/return_value").await.1;
    assert_eq!(api["value"], json!({"rows": 3}), "{api}");
    ctl.ok(&["xcom", "add", "compat", "ctl-run", "produce", "ctl_key", r#"{"a": 1}"#]).await;
    ctl.ok(&["xcom", "edit", "compat", "ctl-run", "produce", "ctl_key", r#"{"a": 2}"#]).await;
    let edited = stack.get("/api/v2/dags/compat/dagRuns/ctl-run/taskInstances/produce/xcomEntries/ctl_key").await.1;
    assert_eq!(edited["value"], json!({"a": 2}), "{edited}");
    ctl.ok(&["xcom", "delete", "compat", "ctl-run", "produce", "ctl_key"]).await;
    let gone = stack.get("/api/v2/dags/compat/dagRuns/ctl-run/taskInstances/produce/xcomEntries/ctl_key").await.0;
    assert_eq!(gone, 404);

    let pool =
        ctl.one(&["pools", "create", "--name", "ctl_pool", "--slots", "4", "--description", "by airflowctl"]).await;
    assert_eq!((text(&pool["name"]), text(&pool["slots"])), ("ctl_pool".into(), "4".into()), "{pool}");
    let pool = ctl.one(&["pools", "update", "--pool", "ctl_pool", "--slots", "6"]).await;
    assert_eq!(text(&pool["slots"]), "6", "{pool}");
    let pools = ctl.json(&["pools", "list"]).await;
    assert!(names(&pools, "name").contains(&"ctl_pool".to_string()), "{pools}");
    assert_eq!(ctl.one(&["pools", "get", "ctl_pool"]).await["slots"], "6");
    ctl.ok(&["pools", "delete", "ctl_pool"]).await;
    assert_eq!(stack.get("/api/v2/pools/ctl_pool").await.0, 404);

    let variable = ctl.one(&["variables", "create", "--key", "ctl_var", "--value", "one"]).await;
    assert_eq!(variable["value"], "one", "{variable}");
    ctl.ok(&["variables", "update", "--key", "ctl_var", "--value", "two"]).await;
    assert_eq!(ctl.one(&["variables", "get", "ctl_var"]).await["value"], "two");
    let variables = ctl.json(&["variables", "list"]).await;
    assert!(names(&variables, "key").contains(&"ctl_var".to_string()), "{variables}");
    ctl.ok(&["variables", "delete", "ctl_var"]).await;
    assert_eq!(stack.get("/api/v2/variables/ctl_var").await.0, 404);

    let connection = ctl
        .one(&["connections", "create", "--connection-id", "ctl_conn", "--conn-type", "http", "--host", "a.example"])
        .await;
    assert_eq!(connection["host"], "a.example", "{connection}");
    ctl.ok(&["connections", "update", "--connection-id", "ctl_conn", "--conn-type", "http", "--host", "b.example"])
        .await;
    assert_eq!(ctl.one(&["connections", "get", "ctl_conn"]).await["host"], "b.example");
    let connections = ctl.json(&["connections", "list"]).await;
    assert!(names(&connections, "connection_id").contains(&"ctl_conn".to_string()), "{connections}");
    ctl.ok(&["connections", "delete", "ctl_conn"]).await;
    assert_eq!(stack.get("/api/v2/connections/ctl_conn").await.0, 404);

    let errors = ctl.json(&["dags", "list-import-errors"]).await;
    assert!(
        items(&errors).iter().any(|e| e["filename"].as_str().is_some_and(|f| f.contains("broken.yaml"))),
        "{errors}"
    );
    let assets = ctl.json(&["assets", "list"]).await;
    assert!(assets.is_array() || assets.is_object(), "{assets}");

    // Not `backfill create-dry-run`: airflowctl 0.1.5 reads its answer as one backfill, while Airflow's
    // (and gust's) is the list of runs it would create, so it fails against Airflow as well.
    let backfill = ctl
        .one(&[
            "backfill",
            "create",
            "--dag-id",
            "compat",
            "--from-date",
            "2026-01-01T00:00:00Z",
            "--to-date",
            "2026-01-03T00:00:00Z",
        ])
        .await;
    let id = text(&backfill["id"]);
    assert!(id.parse::<u64>().is_ok(), "a backfill id in {backfill}");
    let backfills = ctl.json(&["backfill", "list", "compat"]).await;
    assert_eq!(items(&backfills).len(), 1, "{backfills}");
    assert_eq!(ctl.one(&["backfill", "get", &id]).await["dag_id"], "compat");
    // airflowctl 0.1.5 sends these as POST; Airflow's API (and gust's) has them as PUT, so both answer 405.
    for action in ["pause", "unpause", "cancel"] {
        let (code, output) = ctl.run(&["backfill", action, &id]).await;
        assert!(code != 0 && output.contains("405"), "backfill {action}: {output}");
    }
    stack.stop().await;
}
