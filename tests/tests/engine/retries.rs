//! Retries, timeouts and repairs: a failed try's next try waits in a
//! RabbitMQ delay queue (no process sleeps or polls for it), a timed-out task
//! dies with its whole process group, and people can clear or mark tasks.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use chrono::{DateTime, Utc};
use gust_shared::amqp::Topology;
use gust_tests::{StackOptions, TestStack};
use serde_json::{json, Value};

/// A bash snippet that counts its tries in `counter` and fails until the `succeed_on`-th.
fn flaky(counter: &Path, succeed_on: u32) -> String {
    format!(
        "n=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}; echo \"attempt $n\"; [ $n -ge {succeed_on} ]",
        c = counter.display()
    )
}

fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("gust-{name}-{}", uuid::Uuid::new_v4()))
}

fn time(value: &Value) -> DateTime<Utc> {
    value.as_str().unwrap_or_else(|| panic!("a timestamp, got {value}")).parse().unwrap()
}

async fn tries(stack: &TestStack, dag_id: &str, run_id: &str, task_id: &str) -> Vec<Value> {
    let (status, body) =
        stack.get(&format!("/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/tries")).await;
    assert_eq!(status, 200, "{body}");
    body["task_instances"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn task_failing_twice_then_succeeding_with_two_retries_ends_success_with_three_tries_and_logs() {
    let counter = scratch("flaky");
    let dag = format!(
        "dag_id: flaky\ndefault_args: {{retries: 2, retry_delay: 1s, retry_exponential_backoff: true}}\ntasks:\n  - id: wobbly\n    operator: bash\n    command: '{}'\n",
        flaky(&counter, 3)
    );
    let stack = TestStack::spawn(&[("flaky.yaml", &dag)]).await;
    let run_id = stack.trigger("flaky", json!({})).await;

    assert_eq!(stack.wait_for_run("flaky", &run_id).await, "success");
    let (_, ti) = stack.get(&format!("/api/v2/dags/flaky/dagRuns/{run_id}/taskInstances/wobbly")).await;
    assert_eq!(
        (ti["state"].as_str(), ti["try_number"].as_i64(), ti["max_tries"].as_i64()),
        (Some("success"), Some(3), Some(2)),
        "{ti}"
    );
    for n in 1..=3 {
        let log = stack.log_text("flaky", &run_id, "wobbly", n).await;
        assert!(log.contains(&format!("attempt {n}")), "try {n} has its own log: {log}");
        assert!(!log.contains(&format!("attempt {}", n + 1)), "try {n} has only its own log: {log}");
    }
    let tries = tries(&stack, "flaky", &run_id, "wobbly").await;
    let states: Vec<_> = tries.iter().map(|t| t["state"].as_str().unwrap_or("?").to_string()).collect();
    assert_eq!(states, vec!["up_for_retry", "up_for_retry", "success"], "{tries:?}");
    // Exponential backoff: 1 s after the first failure, 2 s after the second (bounded above for noisy machines).
    for (i, expected_ms) in [(1usize, 1000i64), (2, 2000)] {
        let gap = (time(&tries[i]["start_date"]) - time(&tries[i - 1]["end_date"])).num_milliseconds();
        assert!(
            gap >= expected_ms - 50 && gap < expected_ms + 10_000,
            "gap before try {} was {gap} ms, expected ~{expected_ms}",
            i + 1
        );
    }
    let _ = std::fs::remove_file(counter);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exhausted_retries_fail_the_run() {
    let dag = "dag_id: hopeless\ntasks:\n  - {id: never, operator: bash, command: 'echo nope; exit 7', retries: 1, retry_delay: 0s}\n  - {id: after, operator: noop, depends_on: [never]}\n";
    let stack = TestStack::spawn(&[("hopeless.yaml", dag)]).await;
    let run_id = stack.trigger("hopeless", json!({})).await;

    assert_eq!(stack.wait_for_run("hopeless", &run_id).await, "failed");
    let (_, ti) = stack.get(&format!("/api/v2/dags/hopeless/dagRuns/{run_id}/taskInstances/never")).await;
    assert_eq!(
        (ti["state"].as_str(), ti["try_number"].as_i64(), ti["exit_code"].as_i64()),
        (Some("failed"), Some(2), Some(7)),
        "{ti}"
    );
    assert_eq!(stack.task_states("hopeless", &run_id).await["after"], "upstream_failed");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pending_retry_survives_stopping_every_scheduler_and_worker() {
    let counter = scratch("survivor");
    let dag = format!(
        "dag_id: survivor\ntasks:\n  - id: second_time_lucky\n    operator: bash\n    retries: 1\n    retry_delay: 3s\n    command: '{}'\n",
        flaky(&counter, 2)
    );
    let mut stack = TestStack::spawn(&[("survivor.yaml", &dag)]).await;
    let run_id = stack.trigger("survivor", json!({})).await;
    stack
        .eventually("the first try to fail into up_for_retry", || async {
            (stack.task_states("survivor", &run_id).await.get("second_time_lucky").map(String::as_str)
                == Some("up_for_retry"))
            .then_some(())
        })
        .await;

    stack.stop_engine().await;
    // With nothing running, the retry's delay ends and the broker moves it from its delay queue to the work queue.
    let work_queue = Topology::from_settings(&stack.settings.amqp).work_queue("default");
    stack
        .eventually("the retry to leave its delay queue for the work queue", || async {
            (stack.queue_depth(&work_queue).await == 1).then_some(())
        })
        .await;
    stack.start_engine();

    assert_eq!(stack.wait_for_run("survivor", &run_id).await, "success");
    let (_, ti) = stack.get(&format!("/api/v2/dags/survivor/dagRuns/{run_id}/taskInstances/second_time_lucky")).await;
    assert_eq!(ti["try_number"], 2, "{ti}");
    assert_eq!(std::fs::read_to_string(&counter).unwrap().trim(), "2", "exactly two executions");
    let _ = std::fs::remove_file(counter);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn timed_out_task_is_killed_with_its_children_and_leaves_no_orphan() {
    let pids = scratch("pids");
    // The task ignores SIGTERM (and so do its children), so only the SIGKILL after the grace period ends it.
    let dag = format!(
        "dag_id: stuck\ntasks:\n  - id: sleeper\n    operator: bash\n    execution_timeout: 2s\n    command: 'trap \"\" TERM; sleep 60 & echo $! >> {p}; echo $$ >> {p}; wait'\n",
        p = pids.display()
    );
    let stack = TestStack::spawn(&[("stuck.yaml", &dag)]).await;
    let run_id = stack.trigger("stuck", json!({})).await;

    assert_eq!(stack.wait_for_run("stuck", &run_id).await, "failed");
    let log = stack.log_text("stuck", &run_id, "sleeper", 1).await;
    assert!(log.contains("execution_timeout of 2s reached; sending SIGTERM"), "{log}");
    assert!(log.contains("sending SIGKILL"), "{log}");
    let (_, ti) = stack.get(&format!("/api/v2/dags/stuck/dagRuns/{run_id}/taskInstances/sleeper")).await;
    assert!(ti["failure_reason"].as_str().unwrap_or_default().contains("timed out after 2s"), "{ti}");
    let recorded: Vec<i32> =
        std::fs::read_to_string(&pids).unwrap().lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(recorded.len(), 2, "the child's and the shell's pid");
    for pid in recorded {
        assert!(gust_tests::processes::is_dead(pid), "process {pid} outlived its timed-out task");
    }
    let _ = std::fs::remove_file(pids);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clearing_a_failed_task_reruns_it_and_its_downstream() {
    let flag = scratch("fixed");
    let dag = format!(
        "dag_id: fixable\ntasks:\n  - {{id: prepare, operator: bash, command: 'echo prepared'}}\n  - id: compute\n    operator: bash\n    command: 'test -e {}'\n    depends_on: [prepare]\n  - {{id: publish, operator: bash, command: 'echo published', depends_on: [compute]}}\n",
        flag.display()
    );
    let stack = TestStack::spawn(&[("fixable.yaml", &dag)]).await;
    let run_id = stack.trigger("fixable", json!({})).await;
    assert_eq!(stack.wait_for_run("fixable", &run_id).await, "failed");
    assert_eq!(stack.task_states("fixable", &run_id).await["publish"], "upstream_failed");

    std::fs::write(&flag, "fixed").unwrap();
    let body = json!({"dry_run": false, "dag_run_id": run_id, "task_ids": ["compute"], "include_downstream": true, "only_failed": false});
    let (status, cleared) = stack.send(reqwest::Method::POST, "/api/v2/dags/fixable/clearTaskInstances", &body).await;
    assert_eq!(status, 200, "{cleared}");
    let mut cleared_ids: Vec<_> = cleared["task_instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task_id"].as_str().unwrap().to_string())
        .collect();
    cleared_ids.sort();
    assert_eq!(cleared_ids, vec!["compute", "publish"]);

    assert_eq!(stack.wait_for_run("fixable", &run_id).await, "success");
    let tries: std::collections::BTreeMap<String, i64> = stack
        .task_instances("fixable", &run_id)
        .await
        .iter()
        .map(|t| (t["task_id"].as_str().unwrap().to_string(), t["try_number"].as_i64().unwrap()))
        .collect();
    assert_eq!(tries["prepare"], 1, "an upstream that was not cleared does not run again");
    assert_eq!(tries["compute"], 2);
    assert_eq!(tries["publish"], 1);
    let log = stack.log_text("fixable", &run_id, "publish", 1).await;
    assert!(log.contains("published"), "{log}");
    let _ = std::fs::remove_file(flag);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_task_marked_failed_by_hand_stays_failed_when_its_worker_finishes() {
    let dag = "dag_id: overruled\ntasks:\n  - {id: slow, operator: bash, command: 'sleep 2; echo done'}\n";
    let stack = TestStack::spawn(&[("overruled.yaml", dag)]).await;
    let run_id = stack.trigger("overruled", json!({})).await;
    stack
        .eventually("the task to run", || async {
            (stack.task_states("overruled", &run_id).await.get("slow").map(String::as_str) == Some("running"))
                .then_some(())
        })
        .await;

    let path = format!("/api/v2/dags/overruled/dagRuns/{run_id}/taskInstances/slow");
    let (status, body) = stack.send(reqwest::Method::PATCH, &path, &json!({"new_state": "failed"})).await;
    assert_eq!(status, 200, "{body}");

    assert_eq!(stack.wait_for_run("overruled", &run_id).await, "failed");
    // The worker's later "success" loses the compare-and-set.
    let log = stack
        .eventually("the worker to finish the try", || async {
            let log = stack.log_text("overruled", &run_id, "slow", 1).await;
            log.contains("exited with code 0").then_some(log)
        })
        .await;
    assert!(log.contains("done"), "{log}");
    // An absence: the worker's outcome, written after its log, gets time to land, and changes nothing.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (_, ti) = stack.get(&path).await;
    assert_eq!(ti["state"], "failed", "{ti}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn marking_a_state_the_state_machine_forbids_is_a_409_or_400() {
    let stack = TestStack::spawn(&[("tiny.yaml", "dag_id: tiny\ntasks:\n  - {id: a, operator: noop}\n")]).await;
    let run_id = stack.trigger("tiny", json!({})).await;
    assert_eq!(stack.wait_for_run("tiny", &run_id).await, "success");
    let path = format!("/api/v2/dags/tiny/dagRuns/{run_id}/taskInstances/a");
    let (status, body) = stack.send(reqwest::Method::PATCH, &path, &json!({"new_state": "running"})).await;
    assert!(status == 400 || status == 409, "{status} {body}");
    assert!(body["detail"].is_string(), "{body}");
    let (status, body) = stack.send(reqwest::Method::PATCH, &path, &json!({"new_state": "sideways"})).await;
    assert!((400..500).contains(&status), "{status} {body}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_whose_delayed_message_was_lost_is_published_again_and_runs_once() {
    let mark = std::env::temp_dir().join(format!("gust-lost-retry-{}", uuid::Uuid::new_v4()));
    let dag = format!(
        "dag_id: lost_retry\ndefault_args: {{retries: 1, retry_delay: 5s}}\n\
         tasks:\n  - {{id: only, operator: bash, command: 'test -e {m} || {{ touch {m}; exit 1; }}; echo ran try $GUST_TRY_NUMBER'}}\n",
        m = mark.display()
    );
    let options = StackOptions { task_queued_timeout: Some(Duration::from_secs(2)), ..StackOptions::default() };
    let stack = TestStack::spawn_with(&[("lost_retry.yaml", &dag)], options).await;
    let run_id = stack.trigger("lost_retry", json!({})).await;
    stack.wait_for_task_state("lost_retry", &run_id, "only", "up_for_retry").await;
    // The retry waits 5 s in its delay queue, where the test loses it.
    let delay_queue = Topology::from_settings(&stack.settings.amqp).delay_queue(5000);
    assert_eq!(stack.purge_queue(&delay_queue).await, 1, "the retry's message was in its delay queue");

    assert_eq!(stack.wait_for_run("lost_retry", &run_id).await, "success");
    let tries = tries(&stack, "lost_retry", &run_id, "only").await;
    let states: Vec<_> = tries.iter().map(|t| t["state"].as_str().unwrap_or_default()).collect();
    assert_eq!(states, ["up_for_retry", "success"], "the retry ran once: {tries:?}");
    let first = stack.log_text("lost_retry", &run_id, "only", 1).await;
    assert!(first.contains("its delayed message was lost; the scheduler published the retry again"), "{first}");
    let second = stack.log_text("lost_retry", &run_id, "only", 2).await;
    assert!(second.contains("ran try 2"), "{second}");
    let _ = std::fs::remove_file(&mark);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_queued_task_whose_message_was_lost_is_retried_after_the_queued_timeout() {
    let dag = "dag_id: lost_message\ndefault_args: {retries: 1, retry_delay: 1s}\n\
               tasks:\n  - {id: only, operator: bash, command: 'echo ran try $GUST_TRY_NUMBER'}\n";
    // No worker yet: the try waits in RabbitMQ, where the test then loses it.
    let options =
        StackOptions { workers: 0, task_queued_timeout: Some(Duration::from_secs(2)), ..StackOptions::default() };
    let stack = TestStack::spawn_with(&[("lost.yaml", dag)], options).await;
    let run_id = stack.trigger("lost_message", json!({})).await;
    stack.wait_for_task_state("lost_message", &run_id, "only", "queued").await;
    let queue = Topology::from_settings(&stack.settings.amqp).work_queue("default");
    assert_eq!(stack.purge_queue(&queue).await, 1, "the try's message was in its work queue");

    let _worker = stack.start_process("gust-worker", "late-worker");
    assert_eq!(stack.wait_for_run("lost_message", &run_id).await, "success");
    let tries = tries(&stack, "lost_message", &run_id, "only").await;
    let states: Vec<_> = tries.iter().map(|t| t["state"].as_str().unwrap_or_default()).collect();
    assert_eq!(states, ["up_for_retry", "success"], "{tries:?}");
    let reason = tries[0]["failure_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("its message was lost"), "{reason}");
    let first = stack.log_text("lost_message", &run_id, "only", 1).await;
    assert!(first.contains("queued for over 2s (task_queued_timeout)"), "{first}");
    let second = stack.log_text("lost_message", &run_id, "only", 2).await;
    assert!(second.contains("ran try 2"), "{second}");
    stack.stop().await;
}
