//! Chaos: real gust binaries killed, frozen and stopped in the middle of a
//! run. After each fault the run ends `success`, every task's effect
//! happened, and no task that had succeeded ran again.

use std::time::Duration;

use gust_tests::{ledger::Ledger, tap::Tap, Deadline, StackOptions, TestStack};
use nix::sys::signal::Signal;
use serde_json::json;

fn engineless() -> StackOptions {
    StackOptions { in_process_engine: false, ..StackOptions::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_worker_task_is_taken_over_by_another_worker_and_the_run_succeeds() {
    let ledger = Ledger::new();
    let stack = TestStack::spawn_with(&[("chain.yaml", &ledger.chain_dag("chain", 3.0, 0))], engineless()).await;
    let _scheduler = stack.start_process("gust-scheduler", "scheduler");
    let mut workers = [
        Some(stack.start_process_with("gust-worker", "worker-a", |s| s.worker.concurrency = 1)),
        Some(stack.start_process_with("gust-worker", "worker-b", |s| s.worker.concurrency = 1)),
    ];
    let run_id = stack.trigger("chain", json!({})).await;

    let slow = stack.wait_for_task_state("chain", &run_id, "slow", "running").await;
    let victim = slow["hostname"].as_str().unwrap().to_string();
    // `running` is committed just before the command starts: kill only once it has.
    stack
        .eventually("slow's command to start", || async { (ledger.starts().get("slow") == Some(&1)).then_some(()) })
        .await;
    let index = if victim == "worker-a" { 0 } else { 1 };
    workers[index].take().unwrap().kill9().await;

    assert_eq!(stack.wait_for_run("chain", &run_id).await, "success");
    ledger.assert_each_finished_once(&["first", "slow", "last"]);
    assert_eq!(ledger.starts()["slow"], 2, "slow started on the dead worker, then again on the survivor");
    let slow = stack.task_instance("chain", &run_id, "slow").await;
    assert_eq!(slow["try_number"], 2, "the takeover is the next try: {slow}");
    assert_ne!(slow["hostname"], victim.as_str(), "{slow}");
    let first_try_log = stack.log_text("chain", &run_id, "slow", 1).await;
    assert!(first_try_log.contains(&format!("worker {victim} stopped heartbeating")), "{first_try_log}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hung_worker_task_is_retried_by_the_scheduler_and_the_woken_worker_cannot_overwrite_it() {
    let ledger = Ledger::new();
    let stack = TestStack::spawn_with(&[("hang.yaml", &ledger.chain_dag("hang", 2.0, 1))], engineless()).await;
    let _scheduler = stack.start_process("gust-scheduler", "scheduler");
    let frozen = stack.start_process_with("gust-worker", "worker-frozen", |s| s.worker.concurrency = 1);
    let run_id = stack.trigger("hang", json!({})).await;

    stack.wait_for_task_state("hang", &run_id, "slow", "running").await;
    frozen.signal(Signal::SIGSTOP);
    let _healthy = stack.start_process_with("gust-worker", "worker-healthy", |s| s.worker.concurrency = 1);

    assert_eq!(stack.wait_for_run("hang", &run_id).await, "success");
    let slow = stack.task_instance("hang", &run_id, "slow").await;
    assert_eq!((slow["try_number"].as_i64(), slow["hostname"].as_str()), (Some(2), Some("worker-healthy")), "{slow}");
    let first_try_log = stack.log_text("hang", &run_id, "slow", 1).await;
    assert!(first_try_log.contains("worker worker-frozen stopped heartbeating"), "{first_try_log}");

    // The frozen worker wakes up, finds its try already ended, and changes nothing.
    frozen.signal(Signal::SIGCONT);
    stack
        .eventually("the woken worker to give up its stale try", || async {
            frozen.output().contains("outcome not recorded").then_some(())
        })
        .await;
    let after = stack.task_instance("hang", &run_id, "slow").await;
    assert_eq!((after["state"].as_str(), after["try_number"].as_i64()), (Some("success"), Some(2)), "{after}");
    ledger.assert_each_finished_once(&["first", "last"]);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_lets_a_worker_finish_its_running_task_and_exit_zero() {
    let ledger = Ledger::new();
    let stack = TestStack::spawn_with(&[("calm.yaml", &ledger.chain_dag("calm", 2.0, 0))], engineless()).await;
    let _scheduler = stack.start_process("gust-scheduler", "scheduler");
    let worker = stack.start_process("gust-worker", "worker-leaving");
    let run_id = stack.trigger("calm", json!({})).await;

    stack.wait_for_task_state("calm", &run_id, "slow", "running").await;
    worker.signal(Signal::SIGTERM);
    let output_before_exit = worker.log.clone();
    assert_eq!(worker.wait().await, Some(0), "{}", std::fs::read_to_string(output_before_exit).unwrap_or_default());
    let slow = stack.task_instance("calm", &run_id, "slow").await;
    assert_eq!((slow["state"].as_str(), slow["try_number"].as_i64()), (Some("success"), Some(1)), "{slow}");

    let _next = stack.start_process("gust-worker", "worker-next");
    assert_eq!(stack.wait_for_run("calm", &run_id).await, "success");
    ledger.assert_each_finished_once(&["first", "slow", "last"]);
    assert_eq!(ledger.starts()["slow"], 1);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_past_the_grace_period_hands_the_task_back_to_another_worker() {
    let flag = std::env::temp_dir().join(format!("gust-handback-{}", uuid::Uuid::new_v4()));
    let ledger = Ledger::new();
    let dag = format!(
        "dag_id: handback\ntasks:\n  - id: long\n    operator: bash\n    command: 'echo \"start $GUST_TASK_ID\" >> {l}; if [ -e {f} ]; then echo second; else touch {f}; sleep 60; fi; echo \"done $GUST_TASK_ID\" >> {l}'\n",
        l = ledger.path.display(),
        f = flag.display()
    );
    let stack = TestStack::spawn_with(&[("handback.yaml", &dag)], engineless()).await;
    let _scheduler = stack.start_process("gust-scheduler", "scheduler");
    let impatient = stack
        .start_process_with("gust-worker", "worker-impatient", |s| s.worker.shutdown_grace = Duration::from_secs(1));
    let run_id = stack.trigger("handback", json!({})).await;

    stack.wait_for_task_state("handback", &run_id, "long", "running").await;
    impatient.signal(Signal::SIGTERM);
    assert_eq!(impatient.wait().await, Some(0));
    let _other = stack.start_process("gust-worker", "worker-other");

    assert_eq!(stack.wait_for_run("handback", &run_id).await, "success");
    let long = stack.task_instance("handback", &run_id, "long").await;
    assert_eq!((long["try_number"].as_i64(), long["hostname"].as_str()), (Some(1), Some("worker-other")), "{long}");
    let log = stack.log_text("handback", &run_id, "long", 1).await;
    assert!(log.contains("handed back to the queue") && log.contains("second"), "{log}");
    assert_eq!(ledger.completions().get("long"), Some(&1));
    let _ = std::fs::remove_file(flag);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_scheduler_restarts_and_the_run_completes_without_a_second_dispatch() {
    let ledger = Ledger::new();
    let mut dag = String::from("dag_id: steps\ntasks:\n");
    let names: Vec<String> = (0..6).map(|i| format!("step{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        let depends = if i == 0 { String::new() } else { format!(", depends_on: [step{}]", i - 1) };
        dag.push_str(&format!("  - {{id: {name}, operator: bash, command: '{}'{depends}}}\n", ledger.command(0.3)));
    }
    let stack = TestStack::spawn_with(&[("steps.yaml", &dag)], engineless()).await;
    let scheduler = stack.start_process("gust-scheduler", "scheduler-1");
    let _worker = stack.start_process("gust-worker", "worker");
    let run_id = stack.trigger("steps", json!({})).await;

    stack.wait_for_task_state("steps", &run_id, "step2", "running").await;
    scheduler.kill9().await;
    // Part of the fault, not a wait for a state: the scheduler stays dead a moment while the worker goes on.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _restarted = stack.start_process("gust-scheduler", "scheduler-2");

    assert_eq!(stack.wait_for_run("steps", &run_id).await, "success");
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    ledger.assert_each_finished_once(&names);
    for ti in stack.task_instances("steps", &run_id).await {
        assert_eq!(ti["try_number"], 1, "dispatched once: {ti}");
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_schedulers_dispatch_every_try_exactly_once() {
    let ledger = Ledger::new();
    let mut dag = String::from("dag_id: wide\ntasks:\n  - {id: root, operator: noop}\n");
    for i in 0..40 {
        dag.push_str(&format!(
            "  - {{id: t{i}, operator: bash, command: '{}', depends_on: [root]}}\n",
            ledger.command(0.0)
        ));
    }
    dag.push_str("  - {id: join, operator: noop, depends_on: [");
    dag.push_str(&(0..40).map(|i| format!("t{i}")).collect::<Vec<_>>().join(", "));
    dag.push_str("]}\n");
    let stack = TestStack::spawn_with(&[("wide.yaml", &dag)], engineless()).await;
    // A copy of every message published for queue `default`: a second publish of a try
    // would show here even though the worker's claim drops it without running it.
    let tap = Tap::start(&stack.settings, "default").await;
    let _schedulers: Vec<_> =
        (1..=3).map(|i| stack.start_process("gust-scheduler", &format!("scheduler-{i}"))).collect();
    let _workers: Vec<_> = (1..=2).map(|i| stack.start_process("gust-worker", &format!("worker-{i}"))).collect();
    let first = stack.trigger("wide", json!({})).await;
    let second = stack.trigger("wide", json!({})).await;

    let mut tries = Vec::new();
    for run_id in [&first, &second] {
        assert_eq!(stack.wait_for_run("wide", run_id).await, "success");
        for ti in stack.task_instances("wide", run_id).await {
            assert_eq!(ti["try_number"], 1, "dispatched once: {ti}");
            if ti["task_id"].as_str().is_some_and(|id| id.starts_with('t')) {
                tries.push((ti["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap(), 1));
            }
        }
    }
    let done = ledger.completions();
    assert_eq!(done.len(), 40);
    assert!(done.values().all(|n| *n == 2), "each task once per run: {done:?}");

    assert_eq!(tries.len(), 80, "40 bash tasks in each of two runs");
    stack
        .eventually("the tap to see every try's message", || async {
            let seen = tap.publishes();
            tries.iter().all(|key| seen.contains_key(key)).then_some(())
        })
        .await;
    // An absence: a second publish of any try, late or not, would have to come from a
    // scheduler pass; one more safety sweep of all three schedulers passes first.
    tokio::time::sleep(stack.settings.scheduler.safety_interval + Duration::from_millis(500)).await;
    let published = tap.publishes();
    let twice: Vec<_> = published.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "each try published exactly once; published more often: {twice:?}");
    assert_eq!(tap.unreadable(), 0, "every message on the queue was a task message");
    tap.close().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_task_that_kills_its_worker_every_time_ends_failed_at_the_delivery_limit() {
    let dag = "dag_id: killer\ntasks:\n  - {id: crash, operator: bash, command: 'echo taking my worker down; kill -9 $PPID; sleep 5'}\n";
    let mut stack = TestStack::spawn_with(&[("killer.yaml", dag)], engineless()).await;
    stack.settings.amqp.delivery_limit = 2;
    // The broker's delivery limit, not the zombie check, is what must stop this task.
    let _scheduler = stack
        .start_process_with("gust-scheduler", "scheduler", |s| s.scheduler.zombie_threshold = Duration::from_secs(60));
    let mut worker = stack.start_process("gust-worker", "worker-0");
    let run_id = stack.trigger("killer", json!({})).await;

    let mut deaths = 0;
    let deadline = Deadline::new(format!("run killer/{run_id} to end"));
    let state = loop {
        deadline.check();
        let (_, run) = stack.get(&format!("/api/v2/dags/killer/dagRuns/{run_id}")).await;
        if run["state"] == "failed" || run["state"] == "success" {
            break run["state"].as_str().unwrap().to_string();
        }
        if worker.has_exited() {
            deaths += 1;
            assert!(deaths <= 10, "the delivery limit should have stopped this after a few deaths");
            worker = stack.start_process("gust-worker", &format!("worker-{deaths}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(state, "failed");
    assert!(deaths >= 2, "the worker died at each delivery: {deaths}");
    let crash = stack.task_instance("killer", &run_id, "crash").await;
    assert_eq!(crash["state"], "failed", "{crash}");
    assert!(crash["failure_reason"].as_str().unwrap_or_default().contains("delivery limit"), "{crash}");
    let (_, letters) = stack.get("/api/v2/gust/deadLetters").await;
    assert_eq!(letters["dead_letters"][0]["reason"], "delivery_limit", "{letters}");
    assert_eq!(letters["dead_letters"][0]["task_id"], "crash", "{letters}");
    stack.stop().await;
}
