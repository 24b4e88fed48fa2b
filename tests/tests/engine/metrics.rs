//! Prometheus metrics: the scheduler and the worker serve `/metrics` on their
//! ops server (`GUST__METRICS__BIND`, with `/healthz` and `/readyz`), the
//! webapi on its own address; after a run of N tasks every counter moved by
//! exactly what happened, and `promtool check metrics` accepts each exposition.

use gust_shared::settings::Settings;
use gust_tests::{
    free_address,
    metrics::{assert_promtool_accepts, label_sets, sample},
    StackOptions, TestStack,
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Tasks in the fan-out.
const N: usize = 6;

/// A start task, then `N - 1` parallel noop tasks.
fn fan_out() -> String {
    let mut yaml = String::from("dag_id: counted\ntasks:\n  - {id: start, operator: noop}\n");
    for i in 1..N {
        yaml.push_str(&format!("  - {{id: leaf_{i}, operator: noop, depends_on: [start]}}\n"));
    }
    yaml
}

const TOKEN: &str = "scrape-token-of-this-test";

/// `GET http://{address}/metrics` with `token` as bearer: status and body.
async fn scrape(address: &str, token: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(format!("http://{address}/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap_or_else(|e| panic!("GET {address}/metrics: {e}"));
    let status = response.status().as_u16();
    (status, response.text().await.expect("the /metrics body"))
}

/// Scrapes `address` until `done` holds for the exposition (a hang guard for counters incremented
/// just after the commit the API already shows), then returns it.
async fn scrape_until(stack: &TestStack, address: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
    stack
        .eventually(what, || async {
            let (status, text) = scrape(address, Some(TOKEN)).await;
            (status == 200 && done(&text)).then_some(text)
        })
        .await
}

fn with_metrics(settings: &Settings, bind: &str) -> Settings {
    let mut settings = settings.clone();
    settings.metrics.bind = bind.to_string();
    settings.metrics.token = Some(TOKEN.to_string());
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_of_n_tasks_moves_every_counter_by_exactly_what_happened() {
    let options = StackOptions { in_process_engine: false, ..StackOptions::default() };
    let stack = TestStack::spawn_with(&[("counted.yaml", &fan_out())], options).await;
    let (scheduler_at, worker_at) = (free_address().await, free_address().await);
    let stop = CancellationToken::new();
    let scheduler =
        tokio::spawn(gust_scheduler::run(with_metrics(&stack.settings, &scheduler_at), stop.clone().cancelled_owned()));
    let worker =
        tokio::spawn(gust_worker::run(with_metrics(&stack.settings, &worker_at), stop.clone().cancelled_owned()));

    // One server per process carries the probes and the metrics; the token guards only /metrics.
    for (component, address) in [("worker", &worker_at), ("scheduler", &scheduler_at)] {
        stack
            .eventually(&format!("the {component}'s ops server to be ready"), || async {
                let response = reqwest::get(format!("http://{address}/readyz")).await.ok()?;
                (response.status() == 200).then_some(())
            })
            .await;
    }
    assert_eq!(scrape(&scheduler_at, None).await.0, 401, "no token, no metrics");
    assert_eq!(scrape(&worker_at, Some("a-wrong-token")).await.0, 401);
    stack.wait_for_dag("counted").await;
    let webapi_at = stack.api.trim_start_matches("http://").to_string();
    let (_, webapi_before) = scrape(&webapi_at, None).await;
    let dag_route = [("route", "/api/v2/dags/{dag_id}"), ("method", "GET"), ("status", "200")];
    let trigger_route = [("route", "/api/v2/dags/{dag_id}/dagRuns"), ("method", "POST"), ("status", "200")];

    let run_id = stack.trigger("counted", json!({})).await;
    assert_eq!(stack.wait_for_run("counted", &run_id).await, "success");
    let (status, _) = stack.get("/api/v2/dags/no_such_dag").await;
    assert_eq!(status, 404);

    let n = N as f64;
    let scheduler_text = scrape_until(&stack, &scheduler_at, "the scheduler to count the finished run", |t| {
        sample(t, "gust_dag_runs_finished_total", &[("state", "success")]) >= 1.0
    })
    .await;
    assert_eq!(sample(&scheduler_text, "gust_tasks_dispatched_total", &[("queue", "default")]), n);
    assert_eq!(sample(&scheduler_text, "gust_dag_runs_created_total", &[("run_type", "manual")]), 1.0);
    assert_eq!(sample(&scheduler_text, "gust_dag_runs_finished_total", &[("state", "success")]), 1.0);
    assert_eq!(sample(&scheduler_text, "gust_dag_runs_finished_total", &[("state", "failed")]), 0.0);
    assert_eq!(sample(&scheduler_text, "gust_dag_run_duration_seconds_count", &[]), 1.0);
    assert_eq!(sample(&scheduler_text, "gust_dag_run_schedule_delay_seconds_count", &[]), 1.0);
    assert_eq!(sample(&scheduler_text, "gust_dag_files", &[]), 1.0);
    assert_eq!(sample(&scheduler_text, "gust_dag_import_errors", &[]), 0.0);
    assert_eq!(sample(&scheduler_text, "gust_zombies_total", &[]), 0.0);
    assert!(sample(&scheduler_text, "gust_scheduler_heartbeat_total", &[]) >= 1.0, "{scheduler_text}");
    assert!(sample(&scheduler_text, "gust_scheduler_loop_duration_seconds_count", &[]) >= 1.0);
    assert_eq!(
        sample(&scheduler_text, "gust_pool_slots", &[("pool", "default_pool"), ("state", "running")]),
        0.0,
        "the gauges are refreshed by every sweep"
    );
    assert_promtool_accepts(&scheduler_text, "scheduler");

    let worker_text = scrape_until(&stack, &worker_at, "the worker to count every try", |t| {
        sample(
            t,
            "gust_task_instances_finished_total",
            &[("state", "success"), ("queue", "default"), ("operator", "noop")],
        ) >= n
    })
    .await;
    let finished = [("state", "success"), ("queue", "default"), ("operator", "noop")];
    assert_eq!(sample(&worker_text, "gust_task_instances_finished_total", &finished), n);
    assert_eq!(label_sets(&worker_text, "gust_task_instances_finished_total").len(), 1, "{worker_text}");
    assert_eq!(sample(&worker_text, "gust_deliveries_total", &[("outcome", "claimed")]), n);
    for outcome in ["duplicate", "stale", "takeover", "dead-lettered"] {
        assert_eq!(sample(&worker_text, "gust_deliveries_total", &[("outcome", outcome)]), 0.0, "{outcome}");
    }
    assert_eq!(sample(&worker_text, "gust_task_duration_seconds_count", &[("operator", "noop")]), n);
    assert_eq!(sample(&worker_text, "gust_task_queued_duration_seconds_count", &[("queue", "default")]), n);
    // Each try's claim and its success go through the group commit: 2N entries in all.
    assert_eq!(sample(&worker_text, "gust_group_commit_batch_size_sum", &[]), 2.0 * n);
    assert_eq!(sample(&worker_text, "gust_task_timeouts_total", &[]), 0.0);
    assert_eq!(sample(&worker_text, "gust_handbacks_total", &[]), 0.0);
    let concurrency = stack.settings.worker.concurrency as f64;
    assert_eq!(sample(&worker_text, "gust_worker_slots", &[("state", "busy")]), 0.0);
    assert_eq!(sample(&worker_text, "gust_worker_slots", &[("state", "free")]), concurrency);
    assert_promtool_accepts(&worker_text, "worker");

    let (status, webapi_after) = scrape(&webapi_at, None).await;
    assert_eq!(status, 200, "the webapi's /metrics is open without GUST__METRICS__TOKEN");
    let delta = |labels: &[(&str, &str)]| {
        sample(&webapi_after, "gust_http_requests_total", labels)
            - sample(&webapi_before, "gust_http_requests_total", labels)
    };
    // The trigger helper reads the DAG once, then the 404 above: one 200 and one 404 on the pattern.
    assert_eq!(delta(&dag_route), 1.0);
    assert_eq!(delta(&[("route", "/api/v2/dags/{dag_id}"), ("method", "GET"), ("status", "404")]), 1.0);
    assert_eq!(delta(&trigger_route), 1.0);
    for labels in label_sets(&webapi_after, "gust_http_requests_total") {
        let route = &labels["route"];
        assert!(!route.contains("counted") && !route.contains("no_such_dag"), "a raw path as route: {route}");
    }
    assert_promtool_accepts(&webapi_after, "webapi");

    stop.cancel();
    scheduler.await.expect("scheduler task").expect("scheduler stops cleanly");
    worker.await.expect("worker task").expect("worker stops cleanly");
    stack.stop().await;
}
