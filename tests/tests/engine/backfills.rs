//! Backfills end to end (scheduler, worker and webapi against the real
//! services): a backfill's runs start under its own `max_active_runs` in
//! logical-date order, all succeed and complete the backfill; reprocess
//! behaviours re-run only what they name; pause holds new runs back and
//! cancel leaves no queued run behind.

use std::{path::PathBuf, time::Duration};

use chrono::{DateTime, Days, NaiveTime, TimeDelta, Utc};
use gust_tests::{Deadline, StackOptions, TestStack};
use reqwest::Method;
use serde_json::{json, Value};

/// Waits until today's UTC midnight is not about to pass, so "N days ago" stays true for the test.
async fn away_from_midnight() {
    let now = Utc::now();
    let midnight = (now.date_naive() + Days::new(1)).and_time(NaiveTime::MIN).and_utc();
    if midnight - now < TimeDelta::seconds(60) {
        tokio::time::sleep((midnight - now + TimeDelta::seconds(1)).to_std().unwrap_or_default()).await;
    }
}

fn days_ago(days: u64) -> DateTime<Utc> {
    (Utc::now().date_naive() - Days::new(days)).and_time(NaiveTime::MIN).and_utc()
}

fn rfc3339(date: DateTime<Utc>) -> String {
    date.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A folder for the files the test DAGs' tasks write.
fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gust-backfill-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("creating the scratch folder");
    dir
}

/// A `@daily` DAG (since 20 days ago, no catchup) whose one task runs `command`.
fn daily_dag(dag_id: &str, command: &str) -> String {
    let start = days_ago(20).format("%Y-%m-%d");
    format!(
        "dag_id: {dag_id}\nschedule: '@daily'\nstart_date: {start}\ncatchup: false\ntasks:\n  \
         - id: work\n    operator: bash\n    command: {}\n",
        serde_json::to_string(command).unwrap()
    )
}

/// Creates a backfill of `dag_id` from `from` to `to` days ago; returns its response.
async fn backfill(stack: &TestStack, dag_id: &str, from: u64, to: u64, extra: Value) -> Value {
    stack.wait_for_dag(dag_id).await;
    let mut body = json!({"dag_id": dag_id, "from_date": rfc3339(days_ago(from)), "to_date": rfc3339(days_ago(to))});
    body.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    let (status, response) = stack.send(Method::POST, "/api/v2/backfills", &body).await;
    assert_eq!(status, 200, "creating the backfill: {response}");
    response
}

/// `(logical date, run_type, state)` of the backfill's runs, oldest first.
async fn backfill_runs(stack: &TestStack, backfill_id: i64) -> Vec<(DateTime<Utc>, String, String)> {
    let client = stack.pool.get().await.expect("a database connection");
    let rows = client
        .query(
            "SELECT logical_date, run_type, state FROM dag_runs WHERE backfill_id = $1 ORDER BY logical_date",
            &[&backfill_id],
        )
        .await
        .expect("listing the backfill's runs");
    rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect()
}

async fn count_in_state(stack: &TestStack, backfill_id: i64, state: &str) -> usize {
    backfill_runs(stack, backfill_id).await.iter().filter(|r| r.2 == state).count()
}

/// Waits until the backfill has `completed_at`; returns the backfill.
async fn wait_for_completion(stack: &TestStack, backfill_id: i64) -> Value {
    stack
        .eventually(&format!("backfill {backfill_id} to complete"), || async {
            let (status, body) = stack.get(&format!("/api/v2/backfills/{backfill_id}")).await;
            (status == 200 && body["completed_at"].is_string()).then_some(body)
        })
        .await
}

/// The logical dates `count` days from `from` days ago on, oldest first.
fn dates(from: u64, count: u64) -> Vec<DateTime<Utc>> {
    (0..count).map(|i| days_ago(from - i)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_five_day_backfill_runs_two_at_a_time_and_completes_when_all_succeed() {
    away_from_midnight().await;
    let stack = TestStack::spawn(&[("slow.yaml", &daily_dag("slow", "sleep 1"))]).await;
    let created = backfill(&stack, "slow", 10, 6, json!({"max_active_runs": 2})).await;
    let id = created["id"].as_i64().unwrap();

    let mut most_running = 0;
    let deadline = Deadline::new(format!("backfill {id} to complete"));
    let completed = loop {
        deadline.check();
        most_running = most_running.max(count_in_state(&stack, id, "running").await);
        let (_, body) = stack.get(&format!("/api/v2/backfills/{id}")).await;
        if body["completed_at"].is_string() {
            break body;
        }
        stack.assert_components_running();
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(most_running, 2, "the backfill ran two runs at a time, never more");
    let runs = backfill_runs(&stack, id).await;
    let expected: Vec<_> =
        dates(10, 5).into_iter().map(|d| (d, "backfill".to_string(), "success".to_string())).collect();
    assert_eq!(runs, expected);
    let at = |field: &str, body: &Value| body[field].as_str().unwrap().parse::<DateTime<Utc>>().unwrap();
    assert!(at("completed_at", &completed) >= at("created_at", &created), "{completed}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backwards_backfill_with_one_active_run_starts_the_newest_day_first() {
    away_from_midnight().await;
    let dir = scratch_dir();
    let order = dir.join("order.txt");
    let dag = daily_dag("ordered", &format!("echo {{{{ ds }}}} >> {}", order.display()));
    let stack = TestStack::spawn(&[("ordered.yaml", &dag)]).await;
    let id = backfill(&stack, "ordered", 6, 4, json!({"max_active_runs": 1, "run_backwards": true})).await["id"]
        .as_i64()
        .unwrap();
    wait_for_completion(&stack, id).await;
    let written = std::fs::read_to_string(&order).expect("the tasks wrote their dates");
    let expected: Vec<String> = dates(6, 3).iter().rev().map(|d| d.format("%Y-%m-%d").to_string()).collect();
    let backfilled: Vec<&str> = written.lines().filter(|day| expected.iter().any(|e| e == day)).collect();
    assert_eq!(backfilled, expected, "the days in the order their tasks ran: {written}");
    stack.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reprocess_none_keeps_existing_runs_and_failed_reruns_only_the_failed_day() {
    away_from_midnight().await;
    let dir = scratch_dir();
    let marker = |date: DateTime<Utc>| dir.join(format!("ok-{}", date.format("%Y-%m-%d")));
    for date in [days_ago(8), days_ago(6)] {
        std::fs::write(marker(date), "").unwrap();
    }
    let command = format!("test -e {}/ok-{{{{ ds }}}}", dir.display());
    let stack = TestStack::spawn(&[("flaky.yaml", &daily_dag("flaky", &command))]).await;

    let first = backfill(&stack, "flaky", 8, 6, json!({})).await["id"].as_i64().unwrap();
    wait_for_completion(&stack, first).await;
    let states = |runs: Vec<(DateTime<Utc>, String, String)>| runs.into_iter().map(|r| r.2).collect::<Vec<_>>();
    assert_eq!(states(backfill_runs(&stack, first).await), ["success", "failed", "success"]);

    std::fs::write(marker(days_ago(7)), "").unwrap();
    let untouched = backfill(&stack, "flaky", 8, 6, json!({"reprocess_behavior": "none"})).await;
    assert!(untouched["completed_at"].is_string(), "nothing to run, so completed at once: {untouched}");
    let second = untouched["id"].as_i64().unwrap();
    assert_eq!(backfill_runs(&stack, second).await, []);
    assert_eq!(states(backfill_runs(&stack, first).await), ["success", "failed", "success"]);

    let third = backfill(&stack, "flaky", 8, 6, json!({"reprocess_behavior": "failed"})).await["id"].as_i64().unwrap();
    wait_for_completion(&stack, third).await;
    assert_eq!(backfill_runs(&stack, third).await, [(days_ago(7), "backfill".into(), "success".into())]);
    assert_eq!(states(backfill_runs(&stack, first).await), ["success", "success"], "the other days stayed");
    stack.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_backfill_starts_nothing_new_and_cancel_leaves_no_queued_run() {
    away_from_midnight().await;
    let stack = TestStack::spawn(&[("paced.yaml", &daily_dag("paced", "sleep 1"))]).await;
    let id = backfill(&stack, "paced", 10, 7, json!({"max_active_runs": 1})).await["id"].as_i64().unwrap();
    let (status, paused) = stack.send(Method::PUT, &format!("/api/v2/backfills/{id}/pause"), &json!({})).await;
    assert_eq!((status, &paused["is_paused"]), (200, &json!(true)), "{paused}");

    // A start the scheduler decided in a pass that read the backfill before the
    // pause committed may still land: give that pass time to end.
    tokio::time::sleep(stack.settings.scheduler.safety_interval).await;
    stack
        .eventually("the run started before the pause to finish", || async {
            (count_in_state(&stack, id, "running").await == 0).then_some(())
        })
        .await;
    let queued_while_paused = count_in_state(&stack, id, "queued").await;
    assert!(queued_while_paused >= 3, "at most the first run started before the pause");
    // An absence: two safety sweeps (each would start a due run) pass and start nothing.
    tokio::time::sleep(stack.settings.scheduler.safety_interval * 2 + Duration::from_millis(500)).await;
    assert_eq!(count_in_state(&stack, id, "queued").await, queued_while_paused, "a paused backfill starts nothing");

    let (status, _) = stack.send(Method::PUT, &format!("/api/v2/backfills/{id}/unpause"), &json!({})).await;
    assert_eq!(status, 200);
    stack
        .eventually("a run to start after unpausing", || async {
            (count_in_state(&stack, id, "running").await == 1).then_some(())
        })
        .await;
    let (status, cancelled) = stack.send(Method::PUT, &format!("/api/v2/backfills/{id}/cancel"), &json!({})).await;
    assert_eq!(status, 200, "{cancelled}");
    assert!(cancelled["completed_at"].is_string(), "{cancelled}");
    assert_eq!(count_in_state(&stack, id, "queued").await, 0, "cancel leaves no queued run behind");

    stack
        .eventually("the running run to finish after the cancel", || async {
            (count_in_state(&stack, id, "running").await == 0).then_some(())
        })
        .await;
    // An absence: a safety sweep passes and starts no run of the cancelled backfill.
    tokio::time::sleep(stack.settings.scheduler.safety_interval + Duration::from_millis(500)).await;
    let runs = backfill_runs(&stack, id).await;
    let succeeded = runs.iter().filter(|r| r.2 == "success").count();
    let failed = runs.iter().filter(|r| r.2 == "failed").count();
    assert_eq!((runs.len(), succeeded + failed), (4, 4), "every run ended: {runs:?}");
    assert!(succeeded >= 1 && failed >= 1, "{runs:?}");
    let (_, after) = stack.get(&format!("/api/v2/backfills/{id}")).await;
    assert_eq!(after["completed_at"], cancelled["completed_at"], "completed when cancelled");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backfill_runs_do_not_count_against_the_dags_own_max_active_runs() {
    away_from_midnight().await;
    let dag = daily_dag("single", "sleep 2").replace("catchup: false", "catchup: false\nmax_active_runs: 1");
    let stack = TestStack::spawn(&[("single.yaml", &dag)]).await;
    let yesterday = format!("scheduled__{}", days_ago(1).to_rfc3339());
    stack
        .eventually("yesterday's scheduled run", || async {
            (stack.get(&format!("/api/v2/dags/single/dagRuns/{yesterday}")).await.0 == 200).then_some(())
        })
        .await;
    assert_eq!(stack.wait_for_run("single", &yesterday).await, "success");
    let manual = stack.trigger("single", json!({})).await;
    stack.wait_for_task_state("single", &manual, "work", "running").await;
    let id = backfill(&stack, "single", 10, 9, json!({"max_active_runs": 2})).await["id"].as_i64().unwrap();

    let most = stack
        .most_running_until("single", None, || async {
            stack.get(&format!("/api/v2/backfills/{id}")).await.1["completed_at"].is_string()
        })
        .await;
    assert_eq!(most, 3, "the manual run and both backfill runs ran at once, although the DAG allows one");
    assert_eq!(stack.wait_for_run("single", &manual).await, "success");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_three_schedulers_each_backfill_run_starts_once_and_the_limit_holds() {
    away_from_midnight().await;
    let dir = scratch_dir();
    let ran = dir.join("ran.txt");
    let dag = daily_dag("shared", &format!("sleep 0.5; echo {{{{ ds }}}} >> {}", ran.display()));
    let engineless = StackOptions { in_process_engine: false, ..StackOptions::default() };
    let stack = TestStack::spawn_with(&[("shared.yaml", &dag)], engineless).await;
    let _schedulers: Vec<_> =
        (1..=3).map(|i| stack.start_process("gust-scheduler", &format!("scheduler-{i}"))).collect();
    let _workers: Vec<_> = (1..=2).map(|i| stack.start_process("gust-worker", &format!("worker-{i}"))).collect();
    let id = backfill(&stack, "shared", 12, 5, json!({"max_active_runs": 3})).await["id"].as_i64().unwrap();

    let most = stack
        .most_running_until("shared", Some(id), || async {
            stack.get(&format!("/api/v2/backfills/{id}")).await.1["completed_at"].is_string()
        })
        .await;
    assert!(most <= 3, "never more than the backfill's max_active_runs running: {most}");
    let runs = backfill_runs(&stack, id).await;
    assert_eq!(runs.len(), 8);
    assert!(runs.iter().all(|r| r.2 == "success"), "{runs:?}");
    let written = std::fs::read_to_string(&ran).expect("the tasks wrote their dates");
    for day in dates(12, 8) {
        let day = day.format("%Y-%m-%d").to_string();
        assert_eq!(written.lines().filter(|l| *l == day).count(), 1, "{day} ran exactly once: {written}");
    }
    stack.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}
