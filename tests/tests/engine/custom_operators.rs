//! Custom operators (protocol 1): a task whose operator is not built in runs
//! `gust-op-<name>` from the worker's plugin path with the task as JSON on
//! stdin; `$GUST_XCOM` is its XCom and `$GUST_RESULT` may skip it or fail it
//! without retry; timeouts kill its process group as for bash; a worker
//! without the operator dead-letters the message saying which one and where
//! it looked. The examples in `examples/operators/` are the plugins.

use std::path::{Path, PathBuf};

use gust_tests::{StackOptions, TestStack};
use serde_json::{json, Value};

/// A fresh plugin folder with the two examples linked in (the Rust one as `cargo build --bins` left it).
fn plugin_folder() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gust-plugins-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/operators");
    let wordcount = examples.join("python-wordcount/gust-op-wordcount").canonicalize().unwrap();
    std::os::unix::fs::symlink(wordcount, dir.join("gust-op-wordcount")).unwrap();
    std::os::unix::fs::symlink(gust_tests::processes::binary("gust-op-hello"), dir.join("gust-op-hello")).unwrap();
    dir
}

/// Writes an executable shell script `gust-op-<name>` into `dir`.
fn shell_plugin(dir: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(format!("gust-op-{name}"));
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

async fn stack_with_plugins(dags: &[(&str, &str)], plugins: &Path) -> TestStack {
    let options = StackOptions {
        plugin_path: vec!["/nonexistent/first".into(), plugins.to_path_buf()],
        ..StackOptions::default()
    };
    TestStack::spawn_with(dags, options).await
}

/// Records a live worker "ghost" (it runs nothing) that advertises `operator` on queue `default`,
/// as a worker with that operator would, so the scheduler dispatches tasks that use it.
async fn advertise_elsewhere(stack: &TestStack, operator: &str) {
    let client = stack.pool.get().await.unwrap();
    gust_shared::db::heartbeats::beat(&client, "ghost", "worker", "elsewhere", 0, true).await.unwrap();
    let operators = json!([{"name": operator, "kind": "custom", "version": "1"}]);
    gust_shared::db::heartbeats::advertise(&client, "ghost", &["default".to_string()], &operators).await.unwrap();
}

async fn task(stack: &TestStack, dag_id: &str, run_id: &str, task_id: &str) -> Value {
    let (status, ti) = stack.get(&format!("/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")).await;
    assert_eq!(status, 200, "{ti}");
    ti
}

async fn xcom(stack: &TestStack, dag_id: &str, run_id: &str, task_id: &str) -> Value {
    let path = format!("/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value");
    let (status, entry) = stack.get(&path).await;
    assert_eq!(status, 200, "{entry}");
    entry["value"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_custom_operator_reads_the_task_args_params_and_conf_as_json_on_stdin_with_the_bash_environment() {
    let plugins = plugin_folder();
    let out = plugins.join("out");
    std::fs::create_dir_all(&out).unwrap();
    shell_plugin(
        &plugins,
        "capture",
        &format!(
            "cat > {o}/stdin.json\nenv > {o}/env.txt\necho captured on stdout\necho and on stderr >&2",
            o = out.display()
        ),
    );
    let dag = "dag_id: contract\nparams: {region: eu, size: 3}\ntasks:\n  - id: grab\n    operator: capture\n    args:\n      region: '{{ params.region }}'\n      nested: [1, {run: '{{ run_id }}'}]\n      plain: true\n";
    let stack = stack_with_plugins(&[("contract.yaml", dag)], &plugins).await;
    stack.wait_for_dag("contract").await;
    let run_id = stack.trigger("contract", json!({"region": "us"})).await;
    assert_eq!(stack.wait_for_run("contract", &run_id).await, "success");

    let stdin: Value = serde_json::from_str(&std::fs::read_to_string(out.join("stdin.json")).unwrap()).unwrap();
    let ti = task(&stack, "contract", &run_id, "grab").await;
    assert_eq!(stdin["protocol"], 1, "{stdin}");
    let mut sent = stdin["task"].clone();
    let logical_date = sent.as_object_mut().unwrap().remove("logical_date").expect("logical_date is sent");
    assert!(logical_date.is_string() || logical_date.is_null(), "{logical_date}");
    assert_eq!(
        sent,
        json!({
            "dag_id": "contract", "run_id": run_id, "task_id": "grab", "map_index": -1, "try_number": 1,
            "ti_id": ti["id"], "queue": "default"
        })
    );
    assert_eq!(stdin["args"], json!({"region": "us", "nested": [1, {"run": run_id}], "plain": true}));
    assert_eq!(stdin["params"], json!({"region": "us", "size": 3}));
    assert_eq!(stdin["conf"], json!({"region": "us"}));
    let env = std::fs::read_to_string(out.join("env.txt")).unwrap();
    for variable in ["GUST_DAG_ID=contract", "GUST_TASK_ID=grab", "GUST_TRY_NUMBER=1", "GUST_XCOM=", "GUST_RESULT="] {
        assert!(env.lines().any(|l| l.starts_with(variable)), "{variable} missing from\n{env}");
    }
    let log = stack.log_text("contract", &run_id, "grab", 1).await;
    assert!(log.contains("captured on stdout") && log.contains("and on stderr"), "{log}");
    assert!(log.contains("gust-op-capture as process group"), "{log}");
    stack.stop().await;
    let _ = std::fs::remove_dir_all(plugins);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_python_example_pushes_its_count_skips_on_empty_input_and_fails_without_retry_below_min_words() {
    let plugins = plugin_folder();
    let dag = "dag_id: words\ndefault_args: {retries: 3, retry_delay: 1s}\ntasks:\n  - {id: count, operator: wordcount, args: {text: \"the quick brown\\nfox\"}}\n  - {id: empty, operator: wordcount, args: {text: ''}}\n  - {id: after_empty, operator: noop, depends_on: [empty]}\n  - {id: short, operator: wordcount, args: {text: one, min_words: 5}}\n";
    let stack = stack_with_plugins(&[("words.yaml", dag)], &plugins).await;
    stack.wait_for_dag("words").await;
    let run_id = stack.trigger("words", json!({})).await;
    assert_eq!(stack.wait_for_run("words", &run_id).await, "failed");

    let states = stack.task_states("words", &run_id).await;
    assert_eq!(states["count"], "success", "{states:?}");
    assert_eq!(states["empty"], "skipped", "{states:?}");
    assert_eq!(states["after_empty"], "skipped", "a skip passes on as a branch's does: {states:?}");
    assert_eq!(states["short"], "failed", "{states:?}");
    assert_eq!(xcom(&stack, "words", &run_id, "count").await, json!({"words": 4, "lines": 2}));
    let short = task(&stack, "words", &run_id, "short").await;
    assert_eq!(short["try_number"], 1, "retry: false means no second try although retries is 3: {short}");
    assert_eq!(short["failure_reason"], "only 1 words, fewer than min_words 5", "{short}");
    let log = stack.log_text("words", &run_id, "empty", 1).await;
    assert!(log.contains("empty input: skipping the task") && log.contains("skipped the task"), "{log}");
    stack.stop().await;
    let _ = std::fs::remove_dir_all(plugins);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_rust_example_greets_into_its_xcom_its_schema_refuses_missing_args_and_a_garbage_result_fails_the_try() {
    let plugins = plugin_folder();
    shell_plugin(&plugins, "garbage", "echo 'not json' > \"$GUST_RESULT\"");
    let dag = "dag_id: hello\ntasks:\n  - {id: greet, operator: hello, args: {name: '{{ dag_run.conf.who }}'}}\n  - {id: nameless, operator: hello}\n  - {id: junk, operator: garbage}\n";
    let stack = stack_with_plugins(&[("hello.yaml", dag)], &plugins).await;
    stack.wait_for_dag("hello").await;
    let run_id = stack.trigger("hello", json!({"who": "ada"})).await;
    assert_eq!(stack.wait_for_run("hello", &run_id).await, "failed");

    let states = stack.task_states("hello", &run_id).await;
    assert_eq!((states["greet"].as_str(), states["nameless"].as_str()), ("success", "failed"), "{states:?}");
    assert_eq!(xcom(&stack, "hello", &run_id, "greet").await, json!({"greeting": "hello, ada, from task greet"}));
    let nameless = task(&stack, "hello", &run_id, "nameless").await;
    // Its advertised args_schema requires `name`, so the scheduler fails it before it is sent.
    let reason = nameless["failure_reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("args_schema of operator `hello`") && reason.contains("\"name\" is a required property"),
        "{nameless}"
    );
    let junk = task(&stack, "hello", &run_id, "junk").await;
    assert!(
        junk["failure_reason"].as_str().unwrap_or_default().starts_with("$GUST_RESULT is not a valid result"),
        "{junk}"
    );
    stack.stop().await;
    let _ = std::fs::remove_dir_all(plugins);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_timed_out_custom_operator_is_killed_with_its_whole_process_group() {
    let plugins = plugin_folder();
    let pids = plugins.join("pids");
    // It ignores SIGTERM (and so do its children), so only the SIGKILL after the grace period ends it.
    shell_plugin(
        &plugins,
        "stall",
        &format!(
            "[ \"$1\" = --describe ] && exit 1\ntrap '' TERM\nsleep 60 &\necho $! >> {p}\necho $$ >> {p}\nwait",
            p = pids.display()
        ),
    );
    let dag = "dag_id: stall\ntasks:\n  - {id: stuck, operator: stall, execution_timeout: 2s}\n";
    let stack = stack_with_plugins(&[("stall.yaml", dag)], &plugins).await;
    stack.wait_for_dag("stall").await;
    let run_id = stack.trigger("stall", json!({})).await;
    assert_eq!(stack.wait_for_run("stall", &run_id).await, "failed");

    let log = stack.log_text("stall", &run_id, "stuck", 1).await;
    assert!(
        log.contains("execution_timeout of 2s reached; sending SIGTERM") && log.contains("sending SIGKILL"),
        "{log}"
    );
    let stuck = task(&stack, "stall", &run_id, "stuck").await;
    assert!(stuck["failure_reason"].as_str().unwrap_or_default().contains("timed out after 2s"), "{stuck}");
    let recorded: Vec<i32> =
        std::fs::read_to_string(&pids).unwrap().lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(recorded.len(), 2, "the child's and the plugin's pid");
    for pid in recorded {
        assert!(gust_tests::processes::is_dead(pid), "process {pid} outlived its timed-out task");
    }
    stack.stop().await;
    let _ = std::fs::remove_dir_all(plugins);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_custom_operator_killed_by_a_signal_fails_its_try_naming_the_signal() {
    let plugins = plugin_folder();
    shell_plugin(&plugins, "crash", "[ \"$1\" = --describe ] && exit 1\necho about to crash\nkill -KILL $$");
    let dag = "dag_id: crashes\ntasks:\n  - {id: boom, operator: crash}\n";
    let stack = stack_with_plugins(&[("crashes.yaml", dag)], &plugins).await;
    let run_id = stack.trigger("crashes", json!({})).await;
    assert_eq!(stack.wait_for_run("crashes", &run_id).await, "failed");
    let boom = task(&stack, "crashes", &run_id, "boom").await;
    assert_eq!(boom["exit_code"], 137, "128 + 9, as a shell reports it: {boom}");
    let reason = boom["failure_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("killed by signal 9 (SIGKILL)"), "{boom}");
    let log = stack.log_text("crashes", &run_id, "boom", 1).await;
    assert!(log.contains("about to crash") && log.contains("killed by signal 9"), "{log}");
    stack.stop().await;
    let _ = std::fs::remove_dir_all(plugins);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_without_the_operator_dead_letters_the_message_naming_operator_queue_and_plugin_path() {
    let plugins = plugin_folder();
    let dag = "dag_id: lacking\ntasks:\n  - {id: spark, operator: spark-submit, args: {jar: x.jar}, retries: 2}\n";
    let stack = stack_with_plugins(&[("lacking.yaml", dag)], &plugins).await;
    stack.wait_for_dag("lacking").await;
    // Another worker of the queue has it, so the scheduler sends the task; this one receives it.
    advertise_elsewhere(&stack, "spark-submit").await;
    let run_id = stack.trigger("lacking", json!({})).await;
    assert_eq!(stack.wait_for_run("lacking", &run_id).await, "failed");

    let (status, letters) = stack.get("/api/v2/gust/deadLetters").await;
    assert_eq!((status, &letters["total_entries"]), (200, &json!(1)), "{letters}");
    let letter = &letters["dead_letters"][0];
    assert_eq!(letter["reason"], "missing_operator", "{letter}");
    let detail = letter["detail"].as_str().unwrap();
    for part in ["operator `spark-submit`", "queue `default`", "gust-op-spark-submit", plugins.to_str().unwrap()] {
        assert!(detail.contains(part), "{part} missing from: {detail}");
    }
    let ti = task(&stack, "lacking", &run_id, "spark").await;
    assert_eq!(ti["failure_reason"], detail, "the try fails with the same reason, no retry: {ti}");
    assert_eq!(ti["try_number"], 1, "{ti}");
    stack.stop().await;
    let _ = std::fs::remove_dir_all(plugins);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_advertises_its_builtins_and_the_plugins_describe_output_in_the_health_api() {
    let plugins = plugin_folder();
    shell_plugin(&plugins, "mute", "exit 3");
    let stack = stack_with_plugins(&[], &plugins).await;
    let worker = stack
        .eventually("the worker listed with its operators", || async {
            let (status, health) = stack.get("/api/v2/monitor/health").await;
            let worker = health["gust"]["workers"].get(0).cloned();
            (status == 200)
                .then_some(worker)
                .flatten()
                .filter(|w| w["operators"].as_array().is_some_and(|o| !o.is_empty()))
        })
        .await;
    assert_eq!(worker["queues"], json!(["default"]), "{worker}");
    let operators = worker["operators"].as_array().unwrap();
    let by_name = |name: &str| {
        operators
            .iter()
            .find(|o| o["name"] == name)
            .unwrap_or_else(|| panic!("{name} not advertised: {worker}"))
            .clone()
    };
    let bash = by_name("bash");
    assert_eq!((&bash["kind"], &bash["version"]), (&json!("builtin"), &json!(env!("CARGO_PKG_VERSION"))), "{bash}");
    let wordcount = by_name("wordcount");
    assert_eq!((&wordcount["kind"], &wordcount["version"]), (&json!("custom"), &json!("1.0.0")), "{wordcount}");
    assert_eq!(wordcount["args_schema"]["properties"]["min_words"]["type"], "integer", "{wordcount}");
    let hello = by_name("hello");
    assert_eq!(hello["version"], "0.2.0", "{hello}");
    assert_eq!(hello["args_schema"]["required"], json!(["name"]), "{hello}");
    let mute = by_name("mute");
    assert_eq!(mute["version"], Value::Null, "{mute}");
    assert!(mute["describe_error"].as_str().unwrap_or_default().contains("--describe exited"), "{mute}");
    stack.stop().await;
    let _ = std::fs::remove_dir_all(plugins);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_custom_task_stays_scheduled_until_a_live_worker_of_its_queue_advertises_its_operator() {
    let plugins = plugin_folder();
    let dag = "dag_id: later\ntasks:\n  - {id: wait, operator: late}\n";
    let stack = stack_with_plugins(&[("later.yaml", dag)], &plugins).await;
    stack.wait_for_dag("later").await;
    let run_id = stack.trigger("later", json!({})).await;
    stack
        .eventually("the task scheduled", || async {
            (stack.task_states("later", &run_id).await.get("wait").map(String::as_str) == Some("scheduled"))
                .then_some(())
        })
        .await;
    // Several dispatch rounds pass (the safety interval is 2 s); nothing advertises `late`, so it is not sent.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(stack.task_states("later", &run_id).await["wait"], "scheduled");
    let (_, letters) = stack.get("/api/v2/gust/deadLetters").await;
    assert_eq!(letters["total_entries"], 0, "not sent, so not dead-lettered: {letters}");
    let (_, health) = stack.get("/api/v2/monitor/health").await;
    let waits = &health["gust"]["waiting_for_operators"];
    assert_eq!(
        (&waits[0]["operator"], &waits[0]["queue"], &waits[0]["tasks"]),
        (&json!("late"), &json!("default"), &json!(1)),
        "{health}"
    );
    assert!(
        waits[0]["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("no live worker of queue `default` advertises operator `late`"),
        "{waits}"
    );

    shell_plugin(&plugins, "late", "echo finally");
    advertise_elsewhere(&stack, "late").await;
    assert_eq!(stack.wait_for_run("later", &run_id).await, "success");
    let (_, health) = stack.get("/api/v2/monitor/health").await;
    assert_eq!(health["gust"]["waiting_for_operators"], json!([]), "{health}");
    stack.stop().await;
    let _ = std::fs::remove_dir_all(plugins);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn args_that_do_not_fit_the_advertised_schema_fail_the_task_before_it_is_sent() {
    let plugins = plugin_folder();
    let dag = "dag_id: checked\ndefault_args: {retries: 2}\ntasks:\n  - {id: good, operator: hello, args: {name: ada}}\n  - {id: bad, operator: hello, args: {name: 3, shout: true}}\n";
    let stack = stack_with_plugins(&[("checked.yaml", dag)], &plugins).await;
    stack.wait_for_dag("checked").await;
    let run_id = stack.trigger("checked", json!({})).await;
    assert_eq!(stack.wait_for_run("checked", &run_id).await, "failed");

    let states = stack.task_states("checked", &run_id).await;
    assert_eq!((states["good"].as_str(), states["bad"].as_str()), ("success", "failed"), "{states:?}");
    let bad = task(&stack, "checked", &run_id, "bad").await;
    let reason = bad["failure_reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("args do not fit the args_schema of operator `hello` (version 0.2.0): "), "{bad}");
    assert!(reason.contains("(at args.name)") && reason.contains("shout"), "{reason}");
    assert_eq!(bad["try_number"], 1, "no retry: {bad}");
    let log = stack.log_text("checked", &run_id, "bad", 1).await;
    assert!(log.contains("the task was not run"), "{log}");
    stack.stop().await;
    let _ = std::fs::remove_dir_all(plugins);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_oversized_xcom_fails_the_try_naming_the_limit_and_the_worker_runs_the_next_task() {
    let plugins = plugin_folder();
    shell_plugin(
        &plugins,
        "hoard",
        "[ \"$1\" = --describe ] && exit 1\nhead -c 2000000 /dev/zero | tr '\\0' a > \"$GUST_XCOM\"",
    );
    let dag = "dag_id: hoards\ntasks:\n  - {id: big, operator: hoard}\n  - {id: after, operator: bash, command: echo still here, depends_on: [big], trigger_rule: all_done}\n";
    let stack = stack_with_plugins(&[("hoards.yaml", dag)], &plugins).await;
    let run_id = stack.trigger("hoards", json!({})).await;
    stack.wait_for_run("hoards", &run_id).await;

    let states = stack.task_states("hoards", &run_id).await;
    assert_eq!((states["big"].as_str(), states["after"].as_str()), ("failed", "success"), "{states:?}");
    let big = task(&stack, "hoards", &run_id, "big").await;
    let reason = big["failure_reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("$GUST_XCOM holds 2000000 bytes, more than the worker's max_xcom_bytes (1048576)"),
        "{big}"
    );
    let log = stack.log_text("hoards", &run_id, "big", 1).await;
    assert!(log.contains("max_xcom_bytes"), "the reason is in the log too: {log}");
    let (status, _) =
        stack.get(&format!("/api/v2/dags/hoards/dagRuns/{run_id}/taskInstances/big/xcomEntries/return_value")).await;
    assert_eq!(status, 404, "nothing of the oversized XCom is stored");
    stack.stop().await;
    let _ = std::fs::remove_dir_all(plugins);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_secrets_of_a_connection_an_operator_names_by_id_are_masked_in_its_log() {
    let plugins = plugin_folder();
    // The plugin looks the connection up itself (as a client library would) and prints what it found.
    shell_plugin(
        &plugins,
        "leaky",
        "[ \"$1\" = --describe ] && exit 1\necho connecting with password pw-n4med-by-id and key key-3xtra-secret",
    );
    let dag = "dag_id: leaks\ntasks:\n  - {id: leak, operator: leaky, args: {conn_id: vault_by_id}}\n";
    let stack = stack_with_plugins(&[("leaks.yaml", dag)], &plugins).await;
    let connection = json!({
        "connection_id": "vault_by_id", "conn_type": "http", "host": "vault.example",
        "password": "pw-n4med-by-id", "extra": "{\"api_key\": \"key-3xtra-secret\"}",
    });
    let (status, body) = stack.send(reqwest::Method::POST, "/api/v2/connections", &connection).await;
    assert_eq!(status, 201, "{body}");
    let run_id = stack.trigger("leaks", json!({})).await;
    assert_eq!(stack.wait_for_run("leaks", &run_id).await, "success");
    let log = stack.log_text("leaks", &run_id, "leak", 1).await;
    assert!(log.contains("connecting with password *** and key ***"), "{log}");
    assert!(!log.contains("pw-n4med-by-id") && !log.contains("key-3xtra-secret"), "{log}");
    stack.stop().await;
    let _ = std::fs::remove_dir_all(plugins);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_past_the_grace_period_kills_a_custom_operator_and_hands_its_task_back_to_another_worker() {
    let plugins = plugin_folder();
    let (flag, pids) = (plugins.join("started-once"), plugins.join("pids"));
    shell_plugin(
        &plugins,
        "patient",
        &format!(
            "[ \"$1\" = --describe ] && exit 1\nif [ -e {f} ]; then echo second; exit 0; fi\ntouch {f}\nsleep 60 &\necho $! >> {p}\nwait",
            f = flag.display(),
            p = pids.display()
        ),
    );
    let dag = "dag_id: patience\ntasks:\n  - {id: long, operator: patient}\n";
    let options =
        StackOptions { in_process_engine: false, plugin_path: vec![plugins.clone()], ..StackOptions::default() };
    let stack = TestStack::spawn_with(&[("patience.yaml", dag)], options).await;
    let _scheduler = stack.start_process("gust-scheduler", "scheduler");
    let impatient = stack.start_process_with("gust-worker", "worker-impatient", |s| {
        s.worker.shutdown_grace = std::time::Duration::from_secs(1)
    });
    let run_id = stack.trigger("patience", json!({})).await;

    stack.wait_for_task_state("patience", &run_id, "long", "running").await;
    impatient.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(impatient.wait().await, Some(0));
    let child: i32 = std::fs::read_to_string(&pids).unwrap().trim().parse().unwrap();
    assert!(gust_tests::processes::is_dead(child), "the plugin's child {child} outlived its worker");
    let _other = stack.start_process("gust-worker", "worker-other");

    assert_eq!(stack.wait_for_run("patience", &run_id).await, "success");
    let long = task(&stack, "patience", &run_id, "long").await;
    assert_eq!((long["try_number"].as_i64(), long["hostname"].as_str()), (Some(1), Some("worker-other")), "{long}");
    let log = stack.log_text("patience", &run_id, "long", 1).await;
    assert!(log.contains("handed back to the queue") && log.contains("second"), "{log}");
    stack.stop().await;
    let _ = std::fs::remove_dir_all(plugins);
}
