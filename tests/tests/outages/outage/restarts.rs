//! Restarts of the machine's own RabbitMQ and PostgreSQL in the middle of a run.

use std::time::Duration;

use gust_tests::{ledger::Ledger, Deadline, StackOptions, TestStack};
use serde_json::json;

/// Runs a shell command that controls a local service; fails the test with its output.
fn service(command: &str) {
    let output = std::process::Command::new("bash")
        .arg("-c")
        .arg(command)
        .output()
        .unwrap_or_else(|e| panic!("running `{command}`: {e}"));
    assert!(
        output.status.success(),
        "`{command}` failed (these tests restart the local RabbitMQ/PostgreSQL and need root): {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A service stopped by a test; dropped before [`Stopped::start`] (the test
/// failed meanwhile) it starts the service anyway, so a failing test does
/// not leave it down for every other test on the machine.
struct Stopped {
    start: String,
    started: bool,
}

impl Stopped {
    /// Runs `stop`; `start` brings the service back.
    fn stop(stop: &str, start: &str) -> Stopped {
        service(stop);
        Stopped { start: start.to_string(), started: false }
    }

    /// Brings the service back; fails the test if it cannot.
    fn start(mut self) {
        self.started = true;
        service(&self.start);
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        if !self.started {
            let _ = std::process::Command::new("bash").arg("-c").arg(&self.start).status();
        }
    }
}

/// Polls `done` until it holds; fails the test after [`gust_tests::PATIENCE`] (for waits
/// while a service is down, when [`TestStack::eventually`] cannot ask the API).
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Deadline::new(what);
    while !done() {
        deadline.check();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const PG_CLUSTER: &str = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql | sort -V | tail -1) main";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broker_restart_mid_run_loses_nothing_and_runs_nothing_twice() {
    let ledger = Ledger::new();
    let options = StackOptions { in_process_engine: false, ..StackOptions::default() };
    let stack = TestStack::spawn_with(&[("bounce.yaml", &ledger.chain_dag("bounce", 3.0, 0))], options).await;
    let scheduler = stack.start_process("gust-scheduler", "scheduler");
    let worker = stack.start_process("gust-worker", "worker");
    let run_id = stack.trigger("bounce", json!({})).await;

    stack.wait_for_task_state("bounce", &run_id, "slow", "running").await;
    let broker = Stopped::stop("rabbitmqctl stop_app", "rabbitmqctl start_app && rabbitmqctl await_startup");
    // The broker stays down until the worker has noticed (it keeps running `slow` meanwhile).
    stack
        .eventually("the worker to notice RabbitMQ is gone", || async {
            worker.output().contains("lost RabbitMQ; reconnecting").then_some(())
        })
        .await;
    broker.start();

    assert_eq!(stack.wait_for_run("bounce", &run_id).await, "success");
    ledger.assert_each_finished_once(&["first", "slow", "last"]);
    for ti in stack.task_instances("bounce", &run_id).await {
        assert_eq!(ti["try_number"], 1, "{ti}");
    }
    // Both noticed the outage and came back: `last` was published by the scheduler and run by the worker after it.
    assert!(worker.output().contains("reconnected to RabbitMQ"), "{}", worker.output());
    // The scheduler logs "connected to RabbitMQ" only when it re-opens a lost session.
    let scheduler_output = scheduler.output();
    assert!(scheduler_output.contains("connected to RabbitMQ"), "{scheduler_output}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_restart_mid_run_is_survived_and_a_finished_task_is_committed_afterwards() {
    let ledger = Ledger::new();
    let options = StackOptions { in_process_engine: false, ..StackOptions::default() };
    let stack = TestStack::spawn_with(&[("dbdown.yaml", &ledger.chain_dag("dbdown", 1.0, 0))], options).await;
    let scheduler = stack.start_process("gust-scheduler", "scheduler");
    let worker = stack.start_process("gust-worker", "worker");
    let run_id = stack.trigger("dbdown", json!({})).await;

    stack.wait_for_task_state("dbdown", &run_id, "slow", "running").await;
    let database = Stopped::stop(&format!("{PG_CLUSTER} stop -m fast"), &format!("{PG_CLUSTER} start"));
    // `slow` finishes while PostgreSQL is down; its worker must hold the delivery and retry the commit.
    // (The API cannot be asked now: the ledger file and the processes' output can.)
    wait_until("slow to finish during the outage", || ledger.completions().get("slow") == Some(&1)).await;
    wait_until("the worker to fail a write and retry it", || worker.output().contains("failed; retrying")).await;
    wait_until("the scheduler to notice its LISTEN connection is gone", || {
        scheduler.output().contains("LISTEN connection lost")
    })
    .await;
    database.start();

    assert_eq!(stack.wait_for_run("dbdown", &run_id).await, "success");
    ledger.assert_each_finished_once(&["first", "slow", "last"]);
    // The worker kept the finished try's log and outcome, retrying until PostgreSQL was back.
    assert!(worker.output().contains("failed; retrying"), "{}", worker.output());
    for ti in stack.task_instances("dbdown", &run_id).await {
        assert_eq!(ti["try_number"], 1, "{ti}");
    }
    stack.stop().await;
}
