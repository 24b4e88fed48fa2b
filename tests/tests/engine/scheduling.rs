//! Scheduled runs: catchup, `max_active_runs` holding creation back, and
//! several schedulers creating each run exactly once, against the real services.

use std::time::Duration;

use chrono::{DateTime, Days, DurationRound, NaiveTime, TimeDelta, Utc};
use gust_shared::db::runs;
use gust_tests::{StackOptions, TestStack};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// A stack whose tasks are never run, so its runs stay live.
fn without_workers() -> StackOptions {
    StackOptions { workers: 0, ..StackOptions::default() }
}

/// Waits until today's UTC midnight is not about to pass, so "N days ago" stays true for the test.
async fn away_from_midnight() {
    let now = Utc::now();
    let midnight = (now.date_naive() + Days::new(1)).and_time(NaiveTime::MIN).and_utc();
    if midnight - now < TimeDelta::seconds(30) {
        tokio::time::sleep((midnight - now + TimeDelta::seconds(1)).to_std().unwrap_or_default()).await;
    }
}

fn today() -> DateTime<Utc> {
    Utc::now().date_naive().and_time(NaiveTime::MIN).and_utc()
}

fn daily_dag(dag_id: &str, days_ago: u64, catchup: bool, max_active_runs: u32) -> String {
    let start = (Utc::now().date_naive() - Days::new(days_ago)).format("%Y-%m-%d");
    format!(
        "dag_id: {dag_id}\nschedule: '@daily'\nstart_date: {start}\ncatchup: {catchup}\n\
         max_active_runs: {max_active_runs}\ntasks:\n  - {{id: a, operator: noop}}\n"
    )
}

/// Logical dates of the DAG's scheduled runs, in the order they were created.
async fn scheduled_runs(stack: &TestStack, dag_id: &str) -> Vec<DateTime<Utc>> {
    let client = stack.pool.get().await.expect("a database connection");
    let (mut rows, _) = runs::list(&client, dag_id, 10_000, 0).await.expect("listing runs");
    rows.reverse();
    rows.into_iter().filter(|r| r.run_type == "scheduled").filter_map(|r| r.logical_date).collect()
}

async fn wait_for_scheduled_runs(stack: &TestStack, dag_id: &str, count: usize) -> Vec<DateTime<Utc>> {
    stack
        .eventually(&format!("{count} scheduled runs of {dag_id}"), || async {
            let runs = scheduled_runs(stack, dag_id).await;
            (runs.len() >= count).then_some(runs)
        })
        .await
}

/// Lets two more safety sweeps pass, so anything wrongly created would show
/// (an absence: a sleep is the only way to show nothing more happens).
async fn two_more_sweeps(stack: &TestStack) {
    tokio::time::sleep(stack.settings.scheduler.safety_interval * 2 + Duration::from_millis(500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catchup_creates_every_missed_interval_oldest_first() {
    away_from_midnight().await;
    let stack = TestStack::spawn(&[("daily.yaml", &daily_dag("daily", 5, true, 16))]).await;

    let created = wait_for_scheduled_runs(&stack, "daily", 5).await;
    let expected: Vec<_> = (1..=5).rev().map(|days| today() - Days::new(days)).collect();
    assert_eq!(created, expected);
    two_more_sweeps(&stack).await;
    assert_eq!(scheduled_runs(&stack, "daily").await, expected, "no run is created twice or early");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_catchup_only_the_latest_interval_gets_a_run() {
    away_from_midnight().await;
    let stack = TestStack::spawn(&[("latest.yaml", &daily_dag("latest", 5, false, 16))]).await;

    assert_eq!(wait_for_scheduled_runs(&stack, "latest", 1).await, vec![today() - Days::new(1)]);
    two_more_sweeps(&stack).await;
    assert_eq!(scheduled_runs(&stack, "latest").await, vec![today() - Days::new(1)]);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_active_runs_holds_back_catchup_until_a_run_finishes() {
    away_from_midnight().await;
    let stack = TestStack::spawn_with(&[("bounded.yaml", &daily_dag("bounded", 5, true, 2))], without_workers()).await;
    let day = |days_ago: u64| today() - Days::new(days_ago);

    assert_eq!(wait_for_scheduled_runs(&stack, "bounded", 2).await, vec![day(5), day(4)]);
    two_more_sweeps(&stack).await;
    assert_eq!(scheduled_runs(&stack, "bounded").await.len(), 2, "two live runs fill max_active_runs");

    let oldest = format!("scheduled__{}", day(5).to_rfc3339());
    let path = format!("/api/v2/dags/bounded/dagRuns/{oldest}/taskInstances/a");
    stack.wait_for_task_state("bounded", &oldest, "a", "queued").await;
    let (status, body) = stack.send(reqwest::Method::PATCH, &path, &json!({"new_state": "success"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(stack.wait_for_run("bounded", &oldest).await, "success");

    assert_eq!(wait_for_scheduled_runs(&stack, "bounded", 3).await, vec![day(5), day(4), day(3)], "room for one more");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_schedulers_create_each_scheduled_run_exactly_once() {
    let start =
        Utc::now().duration_trunc(TimeDelta::seconds(1)).unwrap() - TimeDelta::hours(48) - TimeDelta::minutes(30);
    let dag = format!(
        "dag_id: hourly\nschedule: {{every: 1h}}\nstart_date: {}\ncatchup: true\nmax_active_runs: 100\n\
         tasks:\n  - {{id: a, operator: noop}}\n",
        start.to_rfc3339()
    );
    let stack = TestStack::spawn_with(&[("hourly.yaml", &dag)], without_workers()).await;
    let second_stop = CancellationToken::new();
    let (settings, token) = (stack.settings.clone(), second_stop.clone());
    let second = tokio::spawn(async move { gust_scheduler::run(settings, token.cancelled_owned()).await });

    let created = wait_for_scheduled_runs(&stack, "hourly", 48).await;
    two_more_sweeps(&stack).await;
    let expected: Vec<_> = (0..48).map(|hours| start + TimeDelta::hours(hours)).collect();
    assert_eq!(scheduled_runs(&stack, "hourly").await, expected, "48 whole hours, each exactly once, oldest first");
    assert_eq!(created[..48], expected[..]);

    second_stop.cancel();
    second.await.expect("second scheduler panicked").expect("second scheduler failed");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_active_runs_holds_with_two_schedulers_starting_runs() {
    let dag = "dag_id: bounded_manual\nmax_active_runs: 2\ntasks:\n  - {id: a, operator: bash, command: sleep 0.3}\n  - {id: b, operator: noop, depends_on: [a]}\n";
    let stack = TestStack::spawn(&[("bounded_manual.yaml", dag)]).await;
    let second_stop = CancellationToken::new();
    let (settings, token) = (stack.settings.clone(), second_stop.clone());
    let second = tokio::spawn(async move { gust_scheduler::run(settings, token.cancelled_owned()).await });
    // Runs are triggered with the raw API below (to choose their ids): wait until a scheduler stored the DAG.
    stack.wait_for_dag("bounded_manual").await;

    let mut run_ids = Vec::new();
    for i in 0..6 {
        let (status, body) = stack
            .send(reqwest::Method::POST, "/api/v2/dags/bounded_manual/dagRuns", &json!({"dag_run_id": format!("r{i}")}))
            .await;
        assert_eq!(status, 200, "{body}");
        run_ids.push(format!("r{i}"));
    }
    // What the database shows running, polled while the runs go; not the runs' recorded
    // start and end dates, which are their transactions' start times (see `most_running_until`).
    let most_at_once = stack
        .most_running_until("bounded_manual", None, || async {
            let client = stack.pool.get().await.expect("a database connection");
            let ended: i64 = client
                .query_one(
                    "SELECT count(*) FROM dag_runs WHERE dag_id = 'bounded_manual' AND state IN ('success', 'failed')",
                    &[],
                )
                .await
                .expect("counting ended runs")
                .get(0);
            ended == 6
        })
        .await;
    for run_id in &run_ids {
        assert_eq!(stack.wait_for_run("bounded_manual", run_id).await, "success");
    }
    assert!(most_at_once <= 2, "never more than max_active_runs running at once: {most_at_once}");

    second_stop.cancel();
    second.await.expect("second scheduler panicked").expect("second scheduler failed");
    stack.stop().await;
}
