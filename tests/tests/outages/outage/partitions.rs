//! A worker partitioned from RabbitMQ but not PostgreSQL, and from
//! PostgreSQL but not RabbitMQ ([`gust_tests::netns`]: its own network
//! namespace, frames silently dropped), mid-task and between claiming a try
//! and starting it, next to a bystander worker that keeps both. When the
//! partition heals nothing is lost, no try starts after its task succeeded,
//! and the late result of a try ended meanwhile changes nothing.
//!
//! The partitioned worker runs at concurrency 1, so its prefetch is 1: while
//! it holds one delivery the broker hands it nothing else, and the work that
//! moves goes to the bystander. Every step waits for an event (a gate file,
//! a lock, a line of output, a state), never for a time.

use std::path::PathBuf;

use gust_shared::amqp::Topology;
use gust_tests::{
    ledger::Ledger,
    netns::{Namespace, Service},
    processes::Process,
    StackOptions, TestStack, PATIENCE,
};
use nix::sys::signal::Signal;
use serde_json::{json, Value};

/// The worker inside the namespace.
const PARTITIONED: &str = "worker-partitioned";
/// The worker outside it.
const BYSTANDER: &str = "worker-bystander";
/// The AMQP heartbeat (seconds) the partitioned worker asks for, so that it
/// and RabbitMQ give up on their connection within seconds, not RabbitMQ's default minute.
const AMQP_HEARTBEAT_S: u32 = 2;

/// A file whose creation lets the gated task finish; removed on drop.
struct Gate {
    path: PathBuf,
}

impl Gate {
    fn new() -> Gate {
        Gate { path: std::env::temp_dir().join(format!("gust-gate-{}", uuid::Uuid::new_v4())) }
    }

    fn open(&self) {
        std::fs::write(&self.path, "open").expect("opening the gate");
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A DAG `first → slow → last` whose tasks record themselves in `ledger`.
/// `slow` records its try as well (`slow#1`) and waits for `gate`; after
/// twice [`PATIENCE`] without it (a hang guard for a failed test) it fails.
fn gated_chain(dag_id: &str, ledger: &Ledger, gate: &Gate, retries: u32) -> String {
    let (log, gate) = (ledger.path.display(), gate.path.display());
    let rounds = PATIENCE.as_secs() * 20;
    let slow = format!(
        "echo \"start $GUST_TASK_ID#$GUST_TRY_NUMBER\" >> {log}; \
         for i in $(seq {rounds}); do [ -e {gate} ] && break; sleep 0.1; done; [ -e {gate} ] || exit 1; \
         echo \"done $GUST_TASK_ID#$GUST_TRY_NUMBER\" >> {log}"
    );
    format!(
        "dag_id: {dag_id}\ndefault_args: {{retries: {retries}, retry_delay: 0s}}\ntasks:\n  \
         - {{id: first, operator: bash, command: '{quick}'}}\n  \
         - {{id: slow, operator: bash, command: '{slow}', depends_on: [first]}}\n  \
         - {{id: last, operator: bash, command: '{quick}', depends_on: [slow]}}\n",
        quick = ledger.command(0.0)
    )
}

/// Starts a worker inside `namespace` that reaches PostgreSQL and RabbitMQ
/// only through its relays, at concurrency 1, with a short AMQP heartbeat.
async fn start_partitioned_worker(stack: &TestStack, namespace: &Namespace) -> Process {
    let mut settings = stack.settings.clone();
    settings.worker.concurrency = 1;
    settings.database.url = namespace.relay(Service::Database, &settings.database.url).await;
    let mut amqp =
        reqwest::Url::parse(&namespace.relay(Service::Broker, &settings.amqp.url).await).expect("a relayed URL parses");
    amqp.query_pairs_mut().append_pair("heartbeat", &AMQP_HEARTBEAT_S.to_string());
    settings.amqp.url = amqp.to_string();
    Process::start_in(&namespace.exec_prefix(), "gust-worker", PARTITIONED, &settings, &stack.dags_dir)
}

/// A process's output without its colours (`task_id=slow`, not `task_id` `=` `slow` between escapes).
fn plain_output(process: &Process) -> String {
    let mut plain = String::new();
    let mut escaped = false;
    for c in process.output().chars() {
        match (escaped, c) {
            (false, '\x1b') => escaped = true,
            (false, c) => plain.push(c),
            (true, c) => escaped = !c.is_ascii_alphabetic(),
        }
    }
    plain
}

/// Waits until `process` has printed `text`.
async fn wait_for_output(stack: &TestStack, process: &Process, text: &str) {
    stack
        .eventually(&format!("{} to print `{text}`", process.name), || async {
            plain_output(process).contains(text).then_some(())
        })
        .await;
}

/// Stops a worker the way an operator does (SIGTERM) and waits for it to exit cleanly.
async fn stop_worker(process: Process) {
    let (name, log) = (process.name.clone(), process.log.clone());
    process.signal(Signal::SIGTERM);
    let code = process.wait().await;
    assert_eq!(code, Some(0), "{name} stopped cleanly: {}", std::fs::read_to_string(log).unwrap_or_default());
}

/// Waits until try 1 of `slow` has started its process (the worker is mid-task, past its preparations).
async fn wait_for_slow_to_start(stack: &TestStack, ledger: &Ledger) {
    stack
        .eventually("try 1 of slow to start its process", || async {
            (ledger.starts().get("slow#1") == Some(&1)).then_some(())
        })
        .await;
}

/// Every try of a task, through the API.
async fn tries(stack: &TestStack, dag_id: &str, run_id: &str, task_id: &str) -> Vec<Value> {
    let (status, body) =
        stack.get(&format!("/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/tries")).await;
    assert_eq!(status, 200, "listing the tries of {task_id}: {body}");
    body["task_instances"].as_array().cloned().unwrap_or_default()
}

/// Messages waiting in the stack's default work queue (none unacked: every worker has stopped).
async fn waiting_messages(stack: &TestStack) -> u32 {
    stack.queue_depth(&Topology::from_settings(&stack.settings.amqp).work_queue("default")).await
}

/// `{task: count}` for the ledger's assertions.
fn counts(pairs: &[(&str, usize)]) -> std::collections::BTreeMap<String, usize> {
    pairs.iter().map(|(task, count)| (task.to_string(), *count)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_cut_off_from_rabbitmq_mid_task_commits_its_result_and_the_redelivery_is_dropped() {
    let (ledger, gate) = (Ledger::new(), Gate::new());
    let options = StackOptions { in_process_engine: false, ..StackOptions::default() };
    let stack = TestStack::spawn_with(&[("cutmq.yaml", &gated_chain("cutmq", &ledger, &gate, 1))], options).await;
    let namespace = Namespace::create();
    let _scheduler = stack.start_process("gust-scheduler", "scheduler");
    let partitioned = start_partitioned_worker(&stack, &namespace).await;
    let run_id = stack.trigger("cutmq", json!({})).await;
    let slow = stack.wait_for_task_state("cutmq", &run_id, "slow", "running").await;
    assert_eq!(slow["hostname"], PARTITIONED, "{slow}");
    wait_for_slow_to_start(&stack, &ledger).await;
    let bystander = stack.start_process("gust-worker", BYSTANDER);

    namespace.cut(Service::Broker);
    // Both ends miss the other's AMQP heartbeats: the worker drops its
    // connection (its task runs on), RabbitMQ requeues the unacked delivery
    // of `slow` and hands it to the bystander. The try is running and its
    // worker still heartbeats through PostgreSQL, so the bystander waits
    // instead of taking it over.
    wait_for_output(&stack, &partitioned, "lost RabbitMQ; reconnecting (running tasks carry on)").await;
    wait_for_output(&stack, &bystander, "redelivered try is still running elsewhere; waiting for it").await;

    gate.open();
    // `slow` ends on the partitioned worker, which records its success in
    // PostgreSQL; its ack cannot reach the broker. The waiting bystander
    // finds the try ended, acks the redelivery and drops it, then runs `last`.
    assert_eq!(stack.wait_for_run("cutmq", &run_id).await, "success");
    wait_for_output(&stack, &bystander, "dropping delivery: this try is not queued").await;
    wait_for_output(&stack, &partitioned, "task_id=slow try_number=1 state=success").await;
    for (task_id, hostname) in [("first", PARTITIONED), ("slow", PARTITIONED), ("last", BYSTANDER)] {
        let ti = stack.task_instance("cutmq", &run_id, task_id).await;
        assert_eq!((ti["state"].as_str(), ti["try_number"].as_i64()), (Some("success"), Some(1)), "{ti}");
        assert_eq!(ti["hostname"], hostname, "{ti}");
    }
    let once = counts(&[("first", 1), ("slow#1", 1), ("last", 1)]);
    assert_eq!((ledger.starts(), ledger.completions()), (once.clone(), once), "nothing ran twice");

    namespace.heal(Service::Broker);
    // Healed, the worker is back on the broker and runs a whole run alone.
    wait_for_output(&stack, &partitioned, "reconnected to RabbitMQ").await;
    stop_worker(bystander).await;
    let second = stack.trigger("cutmq", json!({})).await;
    assert_eq!(stack.wait_for_run("cutmq", &second).await, "success");
    for ti in stack.task_instances("cutmq", &second).await {
        assert_eq!((ti["hostname"].as_str(), ti["try_number"].as_i64()), (Some(PARTITIONED), Some(1)), "{ti}");
    }
    stop_worker(partitioned).await;
    let twice = counts(&[("first", 2), ("slow#1", 2), ("last", 2)]);
    assert_eq!((ledger.starts(), ledger.completions()), (twice.clone(), twice), "each run ran each task once");
    assert_eq!(waiting_messages(&stack).await, 0, "no delivery is left to run again");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_cut_off_from_postgresql_mid_task_is_taken_over_and_its_late_result_is_refused() {
    let (ledger, gate) = (Ledger::new(), Gate::new());
    let options = StackOptions { in_process_engine: false, ..StackOptions::default() };
    let stack = TestStack::spawn_with(&[("cutpg.yaml", &gated_chain("cutpg", &ledger, &gate, 1))], options).await;
    let namespace = Namespace::create();
    let _scheduler = stack.start_process("gust-scheduler", "scheduler");
    let partitioned = start_partitioned_worker(&stack, &namespace).await;
    let run_id = stack.trigger("cutpg", json!({})).await;
    let slow = stack.wait_for_task_state("cutpg", &run_id, "slow", "running").await;
    assert_eq!(slow["hostname"], PARTITIONED, "{slow}");
    wait_for_slow_to_start(&stack, &ledger).await;
    let bystander = stack.start_process("gust-worker", BYSTANDER);

    namespace.cut(Service::Database);
    // The worker's heartbeats stop reaching PostgreSQL. It still holds the
    // delivery of `slow` (RabbitMQ sees a live consumer), so nothing is
    // redelivered; past the zombie threshold the scheduler ends try 1 as
    // failed and publishes try 2 (the task's one retry), which the bystander runs.
    let slow = stack
        .eventually("the scheduler to end try 1 of slow and the bystander to run try 2", || async {
            let ti = stack.task_instance("cutpg", &run_id, "slow").await;
            (ti["try_number"] == 2 && ti["state"] == "running" && ti["hostname"] == BYSTANDER).then_some(ti)
        })
        .await;
    let first_try = tries(&stack, "cutpg", &run_id, "slow").await.into_iter().find(|t| t["try_number"] == 1);
    let first_try = first_try.unwrap_or_else(|| panic!("slow has a try 1: {slow}"));
    assert_eq!(
        (first_try["state"].as_str(), first_try["hostname"].as_str()),
        (Some("up_for_retry"), Some(PARTITIONED))
    );
    let reason = first_try["failure_reason"].as_str().unwrap_or_default();
    assert!(reason.contains(&format!("worker {PARTITIONED} stopped heartbeating")), "{first_try}");

    gate.open();
    // Both tries' processes end. Try 2's success is recorded and the run goes
    // on; the partitioned worker cannot record try 1's and keeps its delivery unacked.
    assert_eq!(stack.wait_for_run("cutpg", &run_id).await, "success");
    stack
        .eventually("try 1 of slow to end on the partitioned worker", || async {
            (ledger.completions().get("slow#1") == Some(&1)).then_some(())
        })
        .await;

    namespace.heal(Service::Database);
    // Its write goes through now, and the compare-and-set on the try number refuses it.
    wait_for_output(&stack, &partitioned, "try was changed by someone else while running; outcome not recorded").await;
    let slow = stack.task_instance("cutpg", &run_id, "slow").await;
    assert_eq!((slow["state"].as_str(), slow["try_number"].as_i64()), (Some("success"), Some(2)), "{slow}");
    assert_eq!(slow["hostname"], BYSTANDER, "{slow}");
    for task_id in ["first", "last"] {
        let ti = stack.task_instance("cutpg", &run_id, task_id).await;
        assert_eq!((ti["state"].as_str(), ti["try_number"].as_i64()), (Some("success"), Some(1)), "{ti}");
    }
    let output = plain_output(&partitioned);
    assert!(!output.contains("lost RabbitMQ"), "its broker connection was never cut: {output}");

    stop_worker(bystander).await;
    stop_worker(partitioned).await;
    // Try 1 could not be stopped while cut off and ran to its end; it and try 2
    // ran once each, and nothing started after the success.
    let each_once = counts(&[("first", 1), ("slow#1", 1), ("slow#2", 1), ("last", 1)]);
    assert_eq!((ledger.starts(), ledger.completions()), (each_once.clone(), each_once));
    assert_eq!(waiting_messages(&stack).await, 0, "the late delivery was acked, not handed back to run again");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_cut_off_from_postgresql_between_claiming_a_try_and_starting_it_never_starts_it() {
    let ledger = Ledger::new();
    let options = StackOptions { in_process_engine: false, ..StackOptions::default() };
    let stack = TestStack::spawn_with(&[("cutprep.yaml", &ledger.chain_dag("cutprep", 0.0, 1))], options).await;
    let namespace = Namespace::create();
    // A worker reads the variables between claiming a try and starting it (to
    // mask secrets in the try's log): with the table locked, the partitioned
    // worker claims `first` and waits right there.
    let mut client = stack.pool.get().await.expect("a database connection");
    let lock = client.transaction().await.expect("a transaction");
    lock.batch_execute("LOCK TABLE variables IN ACCESS EXCLUSIVE MODE").await.expect("locking the variables");
    let _scheduler = stack.start_process("gust-scheduler", "scheduler");
    let partitioned = start_partitioned_worker(&stack, &namespace).await;
    let run_id = stack.trigger("cutprep", json!({})).await;
    let first = stack.wait_for_task_state("cutprep", &run_id, "first", "running").await;
    assert_eq!(first["hostname"], PARTITIONED, "{first}");
    stack
        .eventually("the partitioned worker to wait for the variables", || async {
            let client = stack.pool.get().await.expect("a database connection");
            let waiting: i64 = client
                .query_one(
                    "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
                     WHERE c.relname = 'variables' AND NOT l.granted \
                     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                    &[],
                )
                .await
                .expect("reading pg_locks")
                .get(0);
            (waiting > 0).then_some(())
        })
        .await;
    let bystander = stack.start_process("gust-worker", BYSTANDER);

    namespace.cut(Service::Database);
    lock.rollback().await.expect("releasing the variables");
    // PostgreSQL answers the partitioned worker now, but the answer cannot
    // reach it. Its try of `first` is a zombie: ended and retried as try 2 on the bystander.
    assert_eq!(stack.wait_for_run("cutprep", &run_id).await, "success");
    let first = stack.task_instance("cutprep", &run_id, "first").await;
    assert_eq!((first["state"].as_str(), first["try_number"].as_i64()), (Some("success"), Some(2)), "{first}");
    assert_eq!(first["hostname"], BYSTANDER, "{first}");

    namespace.heal(Service::Database);
    // Healed, it gets its answer and asks whether the try it claimed so long
    // ago is still its own before starting it: it is not, so it never starts.
    wait_for_output(&stack, &partitioned, "try was ended elsewhere while this worker prepared it; not running it")
        .await;
    stop_worker(bystander).await;
    stop_worker(partitioned).await;
    let once = counts(&[("first", 1), ("slow", 1), ("last", 1)]);
    assert_eq!((ledger.starts(), ledger.completions()), (once.clone(), once), "try 1 of first never ran");
    assert_eq!(waiting_messages(&stack).await, 0, "the stale delivery was acked, not handed back to run again");
    stack.stop().await;
}
