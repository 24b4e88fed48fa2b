//! Pools, `pool_slots`, `max_active_tasks` and `priority_weight` against the
//! real services: limits hold at every instant (checked from the recorded
//! start and end times of the task instances), and waiting tasks run once
//! slots free up or their pool is created.

use chrono::{DateTime, Utc};
use gust_tests::{StackOptions, TestStack};
use reqwest::Method;
use serde_json::{json, Value};

/// One worker that could run far more than any limit under test.
fn roomy_worker() -> StackOptions {
    StackOptions { worker_concurrency: 8, ..StackOptions::default() }
}

/// A DAG of `count` independent `sleep` tasks, with extra DAG-level lines and per-task keys.
fn sleepers(dag_id: &str, count: usize, dag_lines: &str, task_keys: &str) -> String {
    let tasks: String =
        (0..count).map(|i| format!("  - {{id: t{i:02}, operator: bash, command: 'sleep 0.3'{task_keys}}}\n")).collect();
    format!("dag_id: {dag_id}\n{dag_lines}tasks:\n{tasks}")
}

async fn create_pool(stack: &TestStack, name: &str, slots: i32) {
    let (status, body) = stack.send(Method::POST, "/api/v2/pools", &json!({"name": name, "slots": slots})).await;
    assert_eq!(status, 201, "creating pool {name}: {body}");
}

fn time(ti: &Value, field: &str) -> DateTime<Utc> {
    let text = ti[field].as_str().unwrap_or_else(|| panic!("{field} missing in {ti}"));
    DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("{field} `{text}`: {e}")).with_timezone(&Utc)
}

/// The most pool slots the task instances held at one instant, from their start and end times.
fn peak_slots(tis: &[Value]) -> i64 {
    let mut events: Vec<(DateTime<Utc>, i64)> = Vec::new();
    for ti in tis {
        let slots = ti["pool_slots"].as_i64().expect("pool_slots");
        events.push((time(ti, "start_date"), slots));
        events.push((time(ti, "end_date"), -slots));
    }
    events.sort_by_key(|(at, change)| (*at, *change));
    let (mut held, mut peak) = (0, 0);
    for (_, change) in events {
        held += change;
        peak = peak.max(held);
    }
    peak
}

async fn run_to_success(stack: &TestStack, dag_id: &str) -> Vec<Value> {
    let run_id = stack.trigger(dag_id, json!({})).await;
    assert_eq!(stack.wait_for_run(dag_id, &run_id).await, "success");
    stack.task_instances(dag_id, &run_id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pool_of_two_slots_never_runs_more_than_two_of_its_twelve_tasks_at_once() {
    let dag = sleepers("pooled", 12, "", ", pool: two");
    let stack = TestStack::spawn_with(&[("pooled.yaml", &dag)], roomy_worker()).await;
    create_pool(&stack, "two", 2).await;

    let tis = run_to_success(&stack, "pooled").await;
    assert_eq!(tis.len(), 12);
    assert!(tis.iter().all(|ti| ti["state"] == "success" && ti["pool"] == "two"), "{tis:?}");
    assert_eq!(peak_slots(&tis), 2, "two slots are used, never more");
    let (_, pool) = stack.get("/api/v2/pools/two").await;
    assert_eq!((pool["occupied_slots"].clone(), pool["open_slots"].clone()), (json!(0), json!(2)), "{pool}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_task_needing_two_slots_shares_a_three_slot_pool_with_one_single_slot_task_at_a_time() {
    let dag = "dag_id: wide\ndefault_args: {pool: three}\ntasks:\n\
               \x20 - {id: wide, operator: bash, command: 'sleep 1', pool_slots: 2, priority_weight: 10}\n\
               \x20 - {id: n1, operator: bash, command: 'sleep 0.4'}\n\
               \x20 - {id: n2, operator: bash, command: 'sleep 0.4'}\n\
               \x20 - {id: n3, operator: bash, command: 'sleep 0.4'}\n\
               \x20 - {id: n4, operator: bash, command: 'sleep 0.4'}\n";
    let stack = TestStack::spawn_with(&[("wide.yaml", dag)], roomy_worker()).await;
    create_pool(&stack, "three", 3).await;

    let tis = run_to_success(&stack, "wide").await;
    let wide = tis.iter().find(|ti| ti["task_id"] == "wide").expect("task wide");
    assert_eq!(wide["pool_slots"], 2);
    assert_eq!(peak_slots(&tis), 3, "the wide task and one single-slot task fill the pool, never more");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_active_tasks_holds_across_two_runs_of_a_dag() {
    let dag = sleepers("capped", 6, "max_active_tasks: 2\n", "");
    let stack = TestStack::spawn_with(&[("capped.yaml", &dag)], roomy_worker()).await;
    let first = stack.trigger("capped", json!({})).await;
    let second = stack.trigger("capped", json!({})).await;
    assert_eq!(stack.wait_for_run("capped", &first).await, "success");
    assert_eq!(stack.wait_for_run("capped", &second).await, "success");
    let mut tis = stack.task_instances("capped", &first).await;
    tis.extend(stack.task_instances("capped", &second).await);
    assert_eq!(tis.len(), 12);
    assert_eq!(peak_slots(&tis), 2, "two task instances of the DAG at once, across both runs");
    assert_eq!(stack.wait_for_dag("capped").await["max_active_tasks"], 2);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_one_slot_waiting_tasks_run_in_priority_weight_order() {
    let dag = "dag_id: ranked\ndefault_args: {pool: single}\ntasks:\n\
               \x20 - {id: low, operator: bash, command: 'sleep 0.2', priority_weight: 1}\n\
               \x20 - {id: high, operator: bash, command: 'sleep 0.2', priority_weight: 10}\n\
               \x20 - {id: middle, operator: bash, command: 'sleep 0.2', priority_weight: 5}\n";
    let stack = TestStack::spawn_with(&[("ranked.yaml", dag)], roomy_worker()).await;
    create_pool(&stack, "single", 1).await;

    let mut tis = run_to_success(&stack, "ranked").await;
    tis.sort_by_key(|ti| time(ti, "start_date"));
    let order: Vec<&str> = tis.iter().map(|ti| ti["task_id"].as_str().unwrap()).collect();
    assert_eq!(order, ["high", "middle", "low"]);
    assert_eq!(peak_slots(&tis), 1);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_task_in_an_unknown_pool_stays_scheduled_and_runs_once_the_pool_is_created() {
    let dag = "dag_id: orphan\ntasks:\n  - {id: a, operator: bash, command: 'true', pool: later}\n";
    let stack = TestStack::spawn_with(&[("orphan.yaml", dag)], roomy_worker()).await;
    let run_id = stack.trigger("orphan", json!({})).await;
    stack.wait_for_task_state("orphan", &run_id, "a", "scheduled").await;
    // An absence: two safety sweeps pass and none dispatches the task of the missing pool.
    tokio::time::sleep(stack.settings.scheduler.safety_interval * 2 + std::time::Duration::from_millis(500)).await;
    let ti = stack.task_instance("orphan", &run_id, "a").await;
    assert_eq!((ti["state"].clone(), ti["pool"].clone()), (json!("scheduled"), json!("later")), "{ti}");
    assert_eq!(stack.get("/api/v2/pools/later").await.0, 404);

    create_pool(&stack, "later", 1).await;
    assert_eq!(stack.wait_for_run("orphan", &run_id).await, "success");
    assert_eq!(stack.task_instance("orphan", &run_id, "a").await["try_number"], 1);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pool_limit_holds_with_three_schedulers_dispatching_at_once() {
    let dag = sleepers("crowded", 12, "", ", pool: two");
    let stack = TestStack::spawn_with(&[("crowded.yaml", &dag)], roomy_worker()).await;
    let stop = tokio_util::sync::CancellationToken::new();
    let extra: Vec<_> = (0..2)
        .map(|_| tokio::spawn(gust_scheduler::run(stack.settings.clone(), stop.clone().cancelled_owned())))
        .collect();
    create_pool(&stack, "two", 2).await;

    let tis = run_to_success(&stack, "crowded").await;
    assert!(tis.iter().all(|ti| ti["try_number"] == 1), "each task dispatched once: {tis:?}");
    assert_eq!(peak_slots(&tis), 2, "three schedulers share the pool's two slots");
    stop.cancel();
    for scheduler in extra {
        scheduler.await.expect("scheduler task").expect("scheduler stops cleanly");
    }
    stack.stop().await;
}
