//! Remote commands against a whole stack (scheduler, worker, webapi in
//! process), through the real `gust` binary with its config file in a
//! temporary folder: login, DAGs, triggering and waiting, logs, the
//! import-error gate, variables, pools, backfills, and the refusals a
//! person must be able to act on (unreachable URL, bad token, weak role).

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use chrono::{Days, Utc};
use gust_tests::{Deadline, TestStack, ADMIN_PASSWORD, ADMIN_USER};
use reqwest::Method;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::helpers::{binary, Run};

impl Run {
    /// Fails unless gust failed with exactly one line on stderr containing every one of `words`.
    #[track_caller]
    fn expect_one_line_error(self, words: &[&str]) -> Run {
        assert!(!matches!(self.code, Some(0)), "gust should have failed: {self:?}");
        assert_eq!(self.stderr.trim_end().lines().count(), 1, "one line on stderr: {self:?}");
        for word in words {
            assert!(self.stderr.contains(word), "stderr names `{word}`: {self:?}");
        }
        assert!(!self.stderr.contains("panicked"), "{self:?}");
        self
    }
}

/// A user of the `gust` binary with a config folder of their own.
struct Gust {
    binary: PathBuf,
    home: PathBuf,
    env: Vec<(String, String)>,
}

impl Gust {
    /// A new user; the first one of the test process brings the build up to date (see [`binary`]),
    /// so make it before the stack.
    fn new() -> Gust {
        let home = std::env::temp_dir().join(format!("gust-cli-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&home).expect("creating the config folder");
        Gust { binary: binary("gust"), home, env: Vec::new() }
    }

    /// The same user with an extra environment variable.
    fn with_env(mut self, key: &str, value: &str) -> Gust {
        self.env.push((key.into(), value.into()));
        self
    }

    fn config_file(&self) -> PathBuf {
        self.home.join("gust").join("config.toml")
    }

    /// Runs `gust args…`, with `stdin` as its standard input.
    async fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let mut child = tokio::process::Command::new(&self.binary)
            .args(args)
            .env_remove("GUST_API_URL")
            .env_remove("GUST_API_TOKEN")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("GUST_CONFIG")
            .env("HOME", &self.home)
            .env("GUST_CLI_CONFIG", self.config_file())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("starting gust");
        let mut input = child.stdin.take().expect("gust's stdin");
        // gust may exit before it reads its input (a bad URL): a broken pipe is not the test's failure.
        let _ = input.write_all(stdin.as_bytes()).await;
        drop(input);
        let output = tokio::time::timeout(gust_tests::PATIENCE, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("gust {args:?} did not finish"))
            .expect("running gust");
        let run = Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        // A transcript, shown when the test fails (or with --nocapture).
        println!("$ gust {}\n{}{}[exit {:?}]", args.join(" "), run.stdout, run.stderr, run.code);
        run
    }

    /// Runs `gust args…` with empty standard input.
    async fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, "").await
    }

    /// `gust login` as `username` with the password on standard input; must succeed.
    async fn login(&self, api: &str, username: &str, password: &str) -> Run {
        self.run_with_stdin(&["login", "--url", api, "--username", username], &format!("{password}\n"))
            .await
            .expect_code(0)
    }

    /// Runs `gust args…` until it exits with `code` (the scheduler rescans its folder on its own time).
    async fn eventually_exits(&self, args: &[&str], code: i32) -> Run {
        let deadline = Deadline::new(format!("gust {args:?} to exit {code}"));
        loop {
            let outcome = self.run(args).await;
            if outcome.code == Some(code) {
                return outcome;
            }
            deadline.check();
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

impl Drop for Gust {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("the config file exists").permissions().mode() & 0o777
}

const HELLO: &str =
    "dag_id: hello\ntags: [demo]\ntasks:\n  - {id: say, operator: bash, command: echo hello from gust}\n";
const MAPPED: &str =
    "dag_id: mapped\ntasks:\n  - {id: each, operator: bash, command: 'echo item {{ item }}', expand: [x, y]}\n";
const RETRIED: &str = "dag_id: retried\ntasks:\n  - {id: first, operator: bash, command: 'sleep 1; echo first'}\n  \
                       - {id: flaky, operator: bash, command: 'echo flaky; sleep 1; exit 1', depends_on: [first], \
                       retries: 1, retry_delay: 1s}\n";
const BROKEN: &str =
    "dag_id: broken\ntasks:\n  - {id: fail, operator: bash, command: 'echo about to fail; exit 3', retries: 0}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_reads_the_password_from_stdin_stores_a_private_token_and_dags_are_listed_paused_and_unpaused() {
    let gust = Gust::new();
    let stack = TestStack::spawn(&[("hello.yaml", HELLO)]).await;
    stack.wait_for_dag("hello").await;

    let login = gust.login(&stack.api, ADMIN_USER, ADMIN_PASSWORD).await;
    assert!(login.stdout.contains("Logged in"), "{login:?}");
    assert_eq!(mode(&gust.config_file()), 0o600, "the token is readable by its owner only");
    let config = std::fs::read_to_string(gust.config_file()).unwrap();
    assert!(config.contains(&stack.api) && config.contains("token"), "{config}");
    assert!(!config.contains(ADMIN_PASSWORD), "the password is not stored: {config}");

    let table = gust.run(&["dags", "list"]).await.expect_code(0);
    assert!(table.stdout.contains("hello") && table.stdout.contains("demo"), "{table:?}");
    let json = gust.run(&["dags", "list", "--output", "json"]).await.expect_code(0).json();
    assert_eq!(json["total_entries"], 1, "{json}");
    assert_eq!(json["dags"][0]["dag_id"], "hello", "{json}");
    let yaml = gust.run(&["dags", "get", "hello", "-o", "yaml"]).await.expect_code(0);
    assert!(yaml.stdout.contains("dag_id: hello"), "{yaml:?}");

    gust.run(&["dags", "pause", "hello"]).await.expect_code(0);
    assert_eq!(stack.get("/api/v2/dags/hello").await.1["is_paused"], true);
    let waiting = gust.run(&["dags", "trigger", "hello"]).await.expect_code(0);
    assert!(
        waiting.stderr.contains("DAG hello is paused; the run waits until `gust dags unpause hello`"),
        "{waiting:?}"
    );
    let gave_up = gust.run(&["dags", "trigger", "hello", "--wait", "--timeout", "1s"]).await;
    assert!(gave_up.stderr.starts_with("gust: warning: DAG hello is paused"), "{gave_up:?}");
    assert_eq!(gave_up.code, Some(2), "{gave_up:?}");
    assert!(gave_up.stderr.lines().nth(1).is_some_and(|l| l.contains("gave up waiting after 1s")), "{gave_up:?}");
    let unpaused = gust.run(&["dags", "unpause", "hello", "--output", "json"]).await.expect_code(0).json();
    assert_eq!(unpaused["is_paused"], false, "{unpaused}");
    assert_eq!(stack.get("/api/v2/dags/hello").await.1["is_paused"], false);

    gust.run(&["logout"]).await.expect_code(0);
    gust.run(&["dags", "list"]).await.expect_one_line_error(&["gust login"]);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trigger_wait_exits_0_for_a_successful_run_and_1_for_a_failed_one_and_task_logs_are_printed() {
    let gust = Gust::new();
    let stack = TestStack::spawn(&[("hello.yaml", HELLO), ("broken.yaml", BROKEN), ("mapped.yaml", MAPPED)]).await;
    for dag in ["hello", "broken", "mapped"] {
        stack.wait_for_dag(dag).await;
    }
    gust.login(&stack.api, ADMIN_USER, ADMIN_PASSWORD).await;

    let ok = gust.run(&["dags", "trigger", "hello", "--wait", "--output", "json"]).await.expect_code(0).json();
    assert_eq!(ok["state"], "success", "{ok}");
    let run_id = ok["dag_run_id"].as_str().expect("dag_run_id").to_string();

    let failed = gust.run(&["dags", "trigger", "broken", "--wait", "--conf", "{}"]).await.expect_code(1);
    assert!(failed.stdout.contains(": failed (failed: fail; its log: gust tasks logs broken"), "{failed:?}");

    let followed = gust.run(&["dags", "trigger", "hello", "--follow"]).await.expect_code(0);
    assert!(followed.stdout.contains("[say] hello from gust"), "the log streams while it runs: {followed:?}");
    assert!(followed.stdout.contains(": success"), "{followed:?}");

    let tasks = gust.run(&["tasks", "list", "hello", &run_id]).await.expect_code(0);
    assert!(tasks.stdout.contains("say") && tasks.stdout.contains("success"), "{tasks:?}");
    let logs = gust.run(&["tasks", "logs", "hello", &run_id, "say"]).await.expect_code(0);
    assert!(logs.stdout.contains("hello from gust"), "{logs:?}");
    let finished_follow = gust.run(&["tasks", "logs", "hello", &run_id, "say", "--follow"]).await.expect_code(0);
    assert!(
        finished_follow.stdout.contains("hello from gust"),
        "a finished task's log ends the follow: {finished_follow:?}"
    );

    let mapped = gust.run(&["dags", "trigger", "mapped", "--follow"]).await.expect_code(0);
    assert!(mapped.stdout.contains("[each[1]] item y"), "mapped instances are labelled: {mapped:?}");
    let mapped_run = gust.run(&["runs", "list", "mapped", "-o", "json"]).await.expect_code(0).json();
    let mapped_run = mapped_run["dag_runs"][0]["dag_run_id"].as_str().expect("the mapped run").to_string();
    let second = gust.run(&["tasks", "logs", "mapped", &mapped_run, "each", "--map-index", "1"]).await.expect_code(0);
    assert!(second.stdout.contains("item y") && !second.stdout.contains("item x"), "{second:?}");
    let missing = gust.run(&["tasks", "logs", "mapped", &mapped_run, "each", "--map-index", "5"]).await;
    missing.expect_one_line_error(&["not found", "map_index 5"]);

    let runs = gust.run(&["runs", "list", "hello", "-o", "json"]).await.expect_code(0).json();
    assert_eq!(runs["total_entries"], 2, "{runs}");
    gust.run(&["tasks", "logs", "hello", &run_id, "nope"]).await.expect_one_line_error(&["not found", "nope"]);
    gust.run(&["dags", "trigger", "nope"]).await.expect_one_line_error(&["not found", "nope"]);
    gust.run(&["dags", "trigger", "hello", "--conf", "[1]"]).await.expect_one_line_error(&["--conf"]);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dags_push_deploys_dag_files_to_a_stack_with_an_empty_dag_folder_and_exits_1_for_a_refused_one() {
    let gust = Gust::new();
    let stack = TestStack::spawn(&[]).await;
    gust.login(&stack.api, ADMIN_USER, ADMIN_PASSWORD).await;
    let files = gust.home.join("dags");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("pushed.yaml"), HELLO.replace("dag_id: hello", "dag_id: pushed")).unwrap();
    std::fs::write(files.join("bad.yaml"), "dag_id: bad\ntasks:\n  - {id: a, operator: nope!}\n").unwrap();
    let (good, bad) = (files.join("pushed.yaml"), files.join("bad.yaml"));
    let run = gust.run(&["dags", "push", good.to_str().unwrap(), bad.to_str().unwrap()]).await.expect_code(1);
    assert!(run.stdout.contains("pushed.yaml: DAG pushed, version 1"), "{run:?}");
    assert!(run.stdout.contains("refused") && run.stdout.contains("dagFiles:bad.yaml"), "{run:?}");
    stack.wait_for_dag("pushed").await;
    let ok = gust.run(&["dags", "trigger", "pushed", "--wait", "--output", "json"]).await.expect_code(0).json();
    assert_eq!(ok["state"], "success", "{ok}");
    gust.run(&["dags", "push", good.to_str().unwrap()]).await.expect_code(0);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retried_task_is_followed_across_its_tries_then_marked_cleared_and_its_run_cleared() {
    let gust = Gust::new();
    let stack = TestStack::spawn(&[("retried.yaml", RETRIED)]).await;
    stack.wait_for_dag("retried").await;
    gust.login(&stack.api, ADMIN_USER, ADMIN_PASSWORD).await;
    let run = gust.run(&["dags", "trigger", "retried", "-o", "json"]).await.expect_code(0).json();
    let run_id = run["dag_run_id"].as_str().expect("dag_run_id").to_string();

    // Started before the task has a try: it waits for the first, follows it into the retry, and ends with the task.
    let followed = gust.run(&["tasks", "logs", "retried", &run_id, "flaky", "--follow"]).await.expect_code(0);
    let tries: Vec<&str> = followed.stdout.lines().filter(|l| l.contains("command exited with code 1")).collect();
    assert_eq!(tries.len(), 2, "both tries' logs, in full: {followed:?}");
    assert!(followed.stdout.contains("--- try 2 ---"), "{followed:?}");
    assert_eq!(stack.wait_for_run("retried", &run_id).await, "failed");
    let first_try = gust.run(&["tasks", "logs", "retried", &run_id, "flaky", "--try", "1"]).await.expect_code(0);
    assert_eq!(first_try.stdout.matches("command exited with code 1").count(), 1, "{first_try:?}");

    let marked = gust.run(&["tasks", "mark", "retried", &run_id, "flaky", "success"]).await.expect_code(0);
    assert!(marked.stdout.contains("Marked success: 1 task instance(s)"), "{marked:?}");
    assert_eq!(stack.task_states("retried", &run_id).await["flaky"], "success");

    let would = gust.run(&["tasks", "clear", "retried", &run_id, "first", "--downstream", "--dry-run"]).await;
    assert!(would.expect_code(0).stdout.contains("Would clear: 2 task instance(s)"));
    assert_eq!(stack.task_states("retried", &run_id).await["first"], "success", "a dry run changes nothing");
    let cleared = gust.run(&["runs", "clear", "retried", &run_id, "-o", "json"]).await.expect_code(0).json();
    assert_eq!(cleared["state"], "queued", "{cleared}");
    assert_eq!(stack.wait_for_run("retried", &run_id).await, "failed", "the cleared run ran again");
    let again = gust.run(&["runs", "get", "retried", &run_id]).await.expect_code(0);
    assert!(again.stdout.contains("failed") && again.stdout.contains(&run_id), "{again:?}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn import_errors_exits_1_while_a_dag_file_is_broken_and_0_once_it_is_fixed() {
    let gust = Gust::new();
    let stack = TestStack::spawn(&[("hello.yaml", HELLO)]).await;
    stack.wait_for_dag("hello").await;
    gust.login(&stack.api, ADMIN_USER, ADMIN_PASSWORD).await;
    let clean = gust.run(&["import-errors"]).await.expect_code(0);
    assert!(clean.stdout.contains("No import errors"), "{clean:?}");

    let cycle = "dag_id: cycle\ntasks:\n  - {id: a, operator: noop, depends_on: [b]}\n  \
                 - {id: b, operator: noop, depends_on: [a]}\n";
    gust_tests::write_file(&stack.dag_path("cycle.yaml"), cycle);
    let gate = gust.eventually_exits(&["import-errors"], 1).await;
    assert!(gate.stdout.contains("cycle.yaml"), "{gate:?}");
    let json = gust.run(&["import-errors", "--output", "json"]).await.expect_code(1).json();
    assert_eq!(json["total_entries"], 1, "{json}");

    std::fs::remove_file(stack.dag_path("cycle.yaml")).unwrap();
    gust.eventually_exits(&["import-errors"], 0).await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn variables_pools_and_backfills_are_managed_from_the_command_line() {
    let start = (Utc::now().date_naive() - Days::new(10)).format("%Y-%m-%d");
    let daily = format!(
        "dag_id: daily\nschedule: '@daily'\nstart_date: {start}\ncatchup: false\ntasks:\n  - {{id: a, operator: noop}}\n"
    );
    let gust = Gust::new();
    let stack = TestStack::spawn(&[("daily.yaml", &daily)]).await;
    stack.wait_for_dag("daily").await;
    gust.login(&stack.api, ADMIN_USER, ADMIN_PASSWORD).await;

    gust.run(&["variables", "set", "region", "eu"]).await.expect_code(0);
    gust.run(&["variables", "set", "region", "us", "--description", "where"]).await.expect_code(0);
    assert_eq!(gust.run(&["variables", "get", "region"]).await.expect_code(0).stdout, "us\n");
    let listed = gust.run(&["variables", "list", "-o", "json"]).await.expect_code(0).json();
    assert_eq!(listed["variables"][0]["description"], "where", "{listed}");
    gust.run(&["variables", "delete", "region"]).await.expect_code(0);
    gust.run(&["variables", "get", "region"]).await.expect_one_line_error(&["not found", "region"]);

    gust.run(&["pools", "set", "gpu", "2", "--description", "the GPU box"]).await.expect_code(0);
    gust.run(&["pools", "set", "gpu", "3"]).await.expect_code(0);
    let pool = gust.run(&["pools", "get", "gpu", "-o", "json"]).await.expect_code(0).json();
    assert_eq!((pool["slots"].clone(), pool["description"].clone()), (json!(3), json!("the GPU box")), "{pool}");
    let pools = gust.run(&["pools", "list"]).await.expect_code(0);
    assert!(pools.stdout.contains("gpu") && pools.stdout.contains("default_pool"), "{pools:?}");
    gust.run(&["pools", "delete", "gpu"]).await.expect_code(0);

    let users = gust.run_with_stdin(&["users", "create", "ola", "--role", "operator"], "ola-password\n").await;
    assert!(users.expect_code(0).stdout.contains("User ola created with role operator"));
    let listed = gust.run(&["users", "list", "-o", "json"]).await.expect_code(0).json();
    let roles: Vec<(String, String)> = listed["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["username"].as_str().unwrap().into(), u["role"].as_str().unwrap().into()))
        .collect();
    assert!(roles.contains(&("ola".into(), "operator".into())), "{listed}");
    Gust::new().login(&stack.api, "ola", "ola-password").await;
    gust.run(&["users", "delete", "ola"]).await.expect_code(0);

    // The DAG is paused so the backfill's runs wait and it can be paused, unpaused and cancelled.
    gust.run(&["dags", "pause", "daily"]).await.expect_code(0);
    let day = |n: u64| (Utc::now().date_naive() - Days::new(n)).format("%Y-%m-%d").to_string();
    let (from, to) = (day(4), day(2));
    let dry = gust.run(&["backfill", "create", "daily", "--from", &from, "--to", &to, "--dry-run", "-o", "json"]).await;
    assert_eq!(dry.expect_code(0).json()["total_entries"], 3);
    let created = gust.run(&["backfill", "create", "daily", "--from", &from, "--to", &to, "-o", "json"]).await;
    let id = created.expect_code(0).json()["id"].as_i64().expect("the backfill's id");
    let listed = gust.run(&["backfill", "list", "daily"]).await.expect_code(0);
    assert!(listed.stdout.contains("daily") && listed.stdout.contains(&id.to_string()), "{listed:?}");
    let listed = gust.run(&["backfill", "list", "daily", "-o", "json"]).await.expect_code(0).json();
    assert_eq!(listed["backfills"][0]["id"], id, "{listed}");
    let id = id.to_string();
    let paused = gust.run(&["backfill", "pause", &id, "-o", "json"]).await.expect_code(0).json();
    assert_eq!(paused["is_paused"], true, "{paused}");
    let unpaused = gust.run(&["backfill", "unpause", &id]).await.expect_code(0);
    assert!(unpaused.stdout.contains(&format!("Backfill {id} unpaused")), "{unpaused:?}");
    gust.run(&["backfill", "cancel", &id]).await.expect_code(0);
    gust.run(&["backfill", "pause", &id]).await.expect_one_line_error(&["409"]);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_garbage_or_expired_token_a_wrong_password_and_a_viewer_writing_are_refused_in_one_line() {
    let wrong = Gust::new();
    let stack = TestStack::spawn(&[("hello.yaml", HELLO)]).await;
    let body = json!({"username": "vera", "password": "vera-password", "role": "viewer"});
    let (status, answer) = stack.send(Method::POST, "/api/v2/gust/users", &body).await;
    assert_eq!(status, 201, "creating a viewer: {answer}");

    let garbage = Gust::new().with_env("GUST_API_URL", &stack.api).with_env("GUST_API_TOKEN", "garbage");
    garbage.run(&["dags", "list"]).await.expect_one_line_error(&["refused the token", "gust login"]);
    let now = Utc::now().timestamp();
    let claims = json!({"sub": ADMIN_USER, "role": "admin", "iat": now - 7200, "exp": now - 3600});
    let secret = stack.settings.auth.jwt_secret.clone().expect("test stacks sign with a known secret");
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("signing a token");
    let stale = Gust::new().with_env("GUST_API_URL", &stack.api).with_env("GUST_API_TOKEN", &expired);
    stale.run(&["dags", "list"]).await.expect_one_line_error(&["expired", "gust login"]);

    let refused = wrong.run_with_stdin(&["login", "--url", &stack.api, "--username", "vera"], "wrong\n").await;
    refused.expect_one_line_error(&["login refused"]);
    assert!(!wrong.config_file().exists(), "a refused login stores nothing");

    let viewer = Gust::new();
    viewer.login(&stack.api, "vera", "vera-password").await;
    viewer.run(&["dags", "list"]).await.expect_code(0);
    viewer.run(&["variables", "set", "k", "v"]).await.expect_one_line_error(&["permission denied", "admin"]);
    viewer.run(&["users", "list"]).await.expect_one_line_error(&["permission denied", "admin"]);
    stack.stop().await;
}

#[test]
fn help_on_every_remote_command_exits_0() {
    let commands: &[&[&str]] = &[
        &["login"],
        &["logout"],
        &["dags", "list"],
        &["dags", "get"],
        &["dags", "pause"],
        &["dags", "unpause"],
        &["dags", "trigger"],
        &["dags", "push"],
        &["runs", "list"],
        &["runs", "get"],
        &["runs", "clear"],
        &["tasks", "list"],
        &["tasks", "logs"],
        &["tasks", "clear"],
        &["tasks", "mark"],
        &["import-errors"],
        &["pools", "set"],
        &["variables", "set"],
        &["backfill", "create"],
        &["users", "create"],
    ];
    for command in commands {
        let args: Vec<&str> = command.iter().copied().chain(["--help"]).collect();
        let run = crate::helpers::gust(&args).expect_code(0);
        assert!(run.stdout.contains("Usage: gust"), "{args:?}:\n{}", run.stdout);
    }
    let trigger = crate::helpers::gust(&["dags", "trigger", "--help"]).stdout;
    for flag in ["--conf <JSON>", "--logical-date <DATE>", "--wait", "--follow", "--output <OUTPUT>"] {
        assert!(trigger.contains(flag), "{flag} missing from:\n{trigger}");
    }
}

#[tokio::test]
async fn an_unreachable_api_and_a_missing_login_are_one_line_errors() {
    // A port nothing listens on: bound, its address read, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let gust = Gust::new();
    let refused = gust.run_with_stdin(&["login", "--url", &url, "--username", "admin"], "secret\n").await;
    refused.expect_one_line_error(&["cannot reach", &url]);
    let offline = Gust::new().with_env("GUST_API_URL", &url).with_env("GUST_API_TOKEN", "t");
    offline.run(&["import-errors"]).await.expect_one_line_error(&["cannot reach", &url]);
    gust.run(&["runs", "list"]).await.expect_one_line_error(&["not logged in", "gust login"]);
    gust.run_with_stdin(&["login", "--url", "localhost:8080", "--username", "a"], "p\n")
        .await
        .expect_one_line_error(&["not an http(s) URL"]);
}
