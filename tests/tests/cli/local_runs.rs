//! `gust dags test` and `gust tasks test` against the local PostgreSQL: a
//! whole run with the daemons' scheduling and worker code on a throwaway
//! database and an in-process broker (no RabbitMQ, no daemons), and one task
//! run with nothing recorded.

use crate::helpers::{gust_with_env, Scratch};

/// A DAG with branching, mapping, XCom, a retry, a trigger rule and (when `fail_leaf`) a failing leaf
/// that prints the XCom it pulled.
fn mixed_dag(fail_leaf: bool) -> String {
    let leaf = if fail_leaf { "echo pulled {{ ti.xcom_pull(task_ids='count') }}; exit 3" } else { "true" };
    format!(
        r#"
dag_id: mixed
params: {{files: {{type: array, default: [a, b, c]}}}}
tasks:
  - id: choose
    operator: branch
    command: echo count
  - id: count
    operator: bash
    command: "echo 3"
    do_xcom_push: true
    depends_on: [choose]
  - id: never
    operator: noop
    depends_on: [choose]
  - id: each
    operator: bash
    command: "echo file $GUST_MAP_ITEM of {{{{ ti.xcom_pull(task_ids='count') }}}}"
    expand: {{param: files}}
    depends_on: [count]
  - id: flaky
    operator: bash
    command: "[ $GUST_TRY_NUMBER -ge 2 ] || exit 1"
    retries: 2
    retry_delay: 1s
  - id: broken
    operator: bash
    command: "echo about to fail; exit 3"
  - id: cleanup
    operator: noop
    trigger_rule: all_done
    depends_on: [broken]
  - id: leaf
    operator: bash
    command: "{leaf}"
    depends_on: [each, flaky]
"#
    )
}

/// The environment of a `dags test` run: the test server's PostgreSQL.
fn database_env() -> [(&'static str, String); 1] {
    [("GUST__DATABASE__URL", gust_tests::database::server_url())]
}

async fn scratch_databases() -> Vec<String> {
    let url = gust_shared::db::with_database(&gust_tests::database::server_url(), "postgres");
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(connection);
    let rows =
        client.query("SELECT datname FROM pg_database WHERE datname LIKE 'gust_dags_test_%'", &[]).await.unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

fn run_dags_test(scratch: &Scratch, args: &[&str]) -> crate::helpers::Run {
    let env = database_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    gust_with_env(&scratch.dir, args, &env)
}

#[tokio::test]
async fn dags_test_runs_branching_mapping_xcom_retries_and_trigger_rules_and_exits_0_on_success() {
    let scratch = Scratch::new("dags-test-ok");
    scratch.dag("mixed.yaml", &mixed_dag(false));
    let junit = scratch.dir.join("report.xml");
    let run = run_dags_test(&scratch, &["dags", "test", "mixed", "--junit", junit.to_str().unwrap()]).expect_code(0);
    let out = &run.stdout;
    assert!(out.contains("throwaway database gust_dags_test_") && out.contains("in-process broker"), "{out}");
    for line in ["never ", "each[2]", "flaky ", "cleanup ", "run success"] {
        assert!(out.contains(line), "`{line}` missing:\n{out}");
    }
    let table: Vec<&str> = out.lines().skip_while(|l| !l.starts_with("task ")).collect();
    let row = |task: &str| table.iter().find(|l| l.starts_with(&format!("{task} "))).copied().unwrap_or_default();
    assert!(row("never").contains("skipped"), "the branch skipped `never`: {table:?}");
    assert!(row("flaky").contains("success") && row("flaky").contains(" 2 "), "flaky succeeded on try 2: {table:?}");
    assert!(row("broken").contains("failed") && row("cleanup").contains("success"), "{table:?}");
    assert!(out.contains("--- log of broken (try 1) ---") && out.contains("about to fail"), "{out}");
    let xml = std::fs::read_to_string(&junit).expect("the JUnit file");
    assert!(xml.contains(r#"tests="10" failures="1""#), "10 task instances, `broken` failed:\n{xml}");
    let throwaway = throwaway_database(out);
    assert!(!scratch_databases().await.contains(&throwaway), "{throwaway} was dropped");
}

/// The throwaway database the output names.
fn throwaway_database(out: &str) -> String {
    let name = out.split("throwaway database ").nth(1).and_then(|rest| rest.split(',').next());
    name.unwrap_or_default().to_string()
}

#[tokio::test]
async fn dags_test_exits_1_when_the_run_fails_and_names_the_failed_leaf() {
    let scratch = Scratch::new("dags-test-fail");
    scratch.dag("mixed.yaml", &mixed_dag(true));
    let run = run_dags_test(&scratch, &["dags", "test", "mixed"]).expect_code(1);
    let leaf = run.stdout.lines().find(|l| l.starts_with("leaf ")).unwrap_or_default();
    assert!(leaf.contains("failed") && leaf.contains("exit code 3"), "{}", run.stdout);
    assert!(run.stdout.contains("run failed"), "{}", run.stdout);
    assert!(run.stdout.contains("--- log of leaf (try 1) ---") && run.stdout.contains("pulled 3"), "{}", run.stdout);
    let throwaway = throwaway_database(&run.stdout);
    assert!(!scratch_databases().await.contains(&throwaway), "{throwaway} was dropped");
}

#[tokio::test]
async fn dags_test_refuses_a_conf_that_does_not_fit_the_params_and_an_unknown_dag_in_one_line() {
    let scratch = Scratch::new("dags-test-bad");
    scratch.dag("mixed.yaml", &mixed_dag(false));
    let run =
        run_dags_test(&scratch, &["dags", "test", "mixed", "--conf", r#"{"files": "not a list"}"#]).expect_code(2);
    assert!(run.stderr.contains("--conf does not fit the params of DAG `mixed`"), "{}", run.stderr);
    let run = run_dags_test(&scratch, &["dags", "test", "nope"]).expect_code(2);
    assert!(run.stderr.contains("no DAG `nope`") && run.stderr.contains("mixed"), "{}", run.stderr);
}

#[tokio::test]
async fn tasks_test_runs_one_task_printing_its_log_and_xcom_and_records_nothing() {
    let scratch = Scratch::new("tasks-test");
    scratch.dag(
        "report.yaml",
        r#"
dag_id: report
params: {region: {type: string, default: eu}, files: {type: array, default: [a, b]}}
tasks:
  - id: greet
    operator: bash
    command: "echo hello {{ params.region }} on {{ ds }}; echo '{\"n\": 2}'"
    do_xcom_push: true
  - id: each
    operator: bash
    command: "echo item $GUST_MAP_ITEM index $GUST_MAP_INDEX"
    expand: {param: files}
  - id: fail
    operator: bash
    command: "exit 4"
"#,
    );
    // No database is needed: this URL points at a port nothing listens on.
    let run = gust_with_env(
        &scratch.dir,
        &["tasks", "test", "report", "greet", "--conf", r#"{"region": "us"}"#, "--logical-date", "2026-03-04"],
        &[("GUST__DATABASE__URL", "postgres://nobody@127.0.0.1:9/nowhere")],
    )
    .expect_code(0);
    assert!(run.stdout.contains("[stdout] hello us on 2026-03-04"), "{}", run.stdout);
    assert!(
        run.stdout.contains("return_value: {\n  \"n\": 2\n}") && run.stdout.contains("state: success"),
        "{}",
        run.stdout
    );
    let run = run_dags_test(&scratch, &["tasks", "test", "report", "each", "--map-index", "1"]).expect_code(0);
    assert!(run.stdout.contains("item b index 1"), "{}", run.stdout);
    let run = run_dags_test(&scratch, &["tasks", "test", "report", "fail"]).expect_code(1);
    assert!(run.stdout.contains("reason: exit code 4") && run.stdout.contains("state: failed"), "{}", run.stdout);
    let run = run_dags_test(&scratch, &["tasks", "test", "report", "each", "--map-index", "5"]).expect_code(2);
    assert!(run.stderr.contains("maps over 2 element(s)"), "{}", run.stderr);
}
