//! `/api/v2/monitor/health` reports the metadatabase, the schedulers and
//! workers by their heartbeats, and the broker. Runs against the real
//! PostgreSQL on 127.0.0.1:5432 and RabbitMQ on 127.0.0.1:5672.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use gust_tests::api::TestApi;
use serde_json::Value;

/// The broker the tests use, as `GUST__AMQP__URL` would name it.
const RABBITMQ: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Inserts one `component_heartbeats` row whose last heartbeat is `age` old (SQL interval), stopped or not.
async fn insert_heartbeat(api: &TestApi, name: &str, kind: &str, age: &str, running_tasks: i32, stopped: bool) {
    let client = api.pool.get().await.unwrap();
    client
        .execute(
            "INSERT INTO component_heartbeats (name, kind, hostname, pid, started_at, last_heartbeat_at, running_tasks, stopped_at) \
             VALUES ($1, $2, 'host-a', 4242, now() - interval '1 day', now() - $3::text::interval, $4, \
                     CASE WHEN $5 THEN now() - $3::text::interval END)",
            &[&name, &kind, &age, &running_tasks, &stopped],
        )
        .await
        .unwrap();
}

/// `GET /api/v2/monitor/health`, which must answer 200.
async fn healthy_report(api: &TestApi) -> Value {
    let reply = api.get("/api/v2/monitor/health").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()
}

/// The entry named `name` in `list`.
fn named<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list}"))
}

/// A loopback port where nothing listens.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn with_no_components_the_scheduler_is_null_and_the_lists_are_empty() {
    let api = TestApi::start().await;
    let health = healthy_report(&api).await;
    assert_eq!(health["metadatabase"]["status"], "healthy");
    assert!(health["scheduler"]["status"].is_null(), "{health}");
    assert!(health["scheduler"]["latest_scheduler_heartbeat"].is_null(), "{health}");
    assert!(health["triggerer"]["status"].is_null() && health["triggerer"]["latest_triggerer_heartbeat"].is_null());
    assert!(health["dag_processor"].is_null(), "{health}");
    assert_eq!(health["gust"]["schedulers"], serde_json::json!([]));
    assert_eq!(health["gust"]["workers"], serde_json::json!([]));
}

#[tokio::test]
async fn schedulers_and_workers_are_healthy_unhealthy_or_stopped_by_their_heartbeats() {
    let api = TestApi::start().await;
    insert_heartbeat(&api, "scheduler@host-a:1", "scheduler", "1 second", 0, false).await;
    insert_heartbeat(&api, "worker-stale", "worker", "10 minutes", 3, false).await;
    insert_heartbeat(&api, "worker-stopped", "worker", "2 seconds", 0, true).await;
    let health = healthy_report(&api).await;

    assert_eq!(health["scheduler"]["status"], "healthy", "{health}");
    let latest = health["scheduler"]["latest_scheduler_heartbeat"].as_str().unwrap();
    let latest: DateTime<Utc> = latest.parse().unwrap_or_else(|e| panic!("{latest} is not RFC 3339: {e}"));
    assert!(Utc::now() - latest < chrono::TimeDelta::minutes(1), "{latest}");

    let scheduler = named(&health["gust"]["schedulers"], "scheduler@host-a:1");
    assert_eq!(scheduler["status"], "healthy", "{scheduler}");
    assert_eq!(scheduler["hostname"], "host-a");
    assert_eq!(scheduler["pid"], 4242);
    assert!(scheduler["started_at"].is_string() && scheduler["latest_heartbeat"].is_string(), "{scheduler}");

    let workers = &health["gust"]["workers"];
    assert_eq!(workers.as_array().unwrap().len(), 2, "{workers}");
    let stale = named(workers, "worker-stale");
    assert_eq!(stale["status"], "unhealthy", "{stale}");
    assert_eq!(stale["running_tasks"], 3);
    assert_eq!(named(workers, "worker-stopped")["status"], "stopped", "{workers}");
}

#[tokio::test]
async fn the_scheduler_is_unhealthy_but_health_still_answers_200_when_no_scheduler_is_alive() {
    let api = TestApi::start().await;
    insert_heartbeat(&api, "scheduler@host-a:1", "scheduler", "5 minutes", 0, false).await;
    insert_heartbeat(&api, "scheduler@host-a:2", "scheduler", "1 hour", 0, true).await;
    let health = healthy_report(&api).await;
    assert_eq!(health["scheduler"]["status"], "unhealthy", "{health}");
    assert_eq!(health["metadatabase"]["status"], "healthy");
}

#[tokio::test]
async fn components_not_seen_for_a_day_are_left_out_of_the_lists_but_count_for_the_scheduler_status() {
    let api = TestApi::start().await;
    insert_heartbeat(&api, "scheduler@old:1", "scheduler", "3 days", 0, false).await;
    insert_heartbeat(&api, "worker-old", "worker", "25 hours", 0, true).await;
    let health = healthy_report(&api).await;
    assert_eq!(health["gust"]["schedulers"], serde_json::json!([]), "{health}");
    assert_eq!(health["gust"]["workers"], serde_json::json!([]), "{health}");
    assert_eq!(health["scheduler"]["status"], "unhealthy", "{health}");
    assert!(health["scheduler"]["latest_scheduler_heartbeat"].is_string(), "{health}");
}

#[tokio::test]
async fn the_liveness_threshold_decides_how_old_a_heartbeat_may_be() {
    let api = TestApi::start_with(|state| state.with_liveness_threshold(Duration::from_secs(600))).await;
    insert_heartbeat(&api, "worker-slow", "worker", "5 minutes", 1, false).await;
    let health = healthy_report(&api).await;
    assert_eq!(named(&health["gust"]["workers"], "worker-slow")["status"], "healthy", "{health}");
}

#[tokio::test]
async fn the_broker_is_not_configured_unless_a_url_is_given() {
    let api = TestApi::start().await;
    let broker = &healthy_report(&api).await["gust"]["broker"];
    assert!(broker["status"].is_null(), "{broker}");
    assert_eq!(broker["detail"], "not configured");
}

#[tokio::test]
async fn a_reachable_broker_is_healthy() {
    let api = TestApi::start_with(|state| state.with_amqp_url(RABBITMQ)).await;
    let broker = &healthy_report(&api).await["gust"]["broker"];
    assert_eq!(broker["status"], "healthy", "{broker}");
    assert!(!broker["detail"].as_str().unwrap().is_empty(), "{broker}");
}

#[tokio::test]
async fn an_unreachable_broker_is_unhealthy_with_a_redacted_detail_and_health_still_answers_200() {
    let url = format!("amqp://guest:s3cret@127.0.0.1:{}/%2f", closed_port());
    let api = TestApi::start_with(|state| state.with_amqp_url(url)).await;
    let health = healthy_report(&api).await;
    let broker = &health["gust"]["broker"];
    assert_eq!(broker["status"], "unhealthy", "{broker}");
    let detail = broker["detail"].as_str().unwrap();
    assert!(detail.contains("127.0.0.1"), "{detail}");
    assert!(!detail.contains("s3cret"), "the password leaked: {detail}");
    assert_eq!(health["metadatabase"]["status"], "healthy");
}

#[tokio::test]
async fn the_broker_check_is_reused_by_requests_within_five_seconds() {
    // A listener that counts connection attempts and hangs up on each: the broker looks down.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let attempts = Arc::new(AtomicUsize::new(0));
    let counter = attempts.clone();
    let accept = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    let url = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
    let api = TestApi::start_with(|state| state.with_amqp_url(url)).await;
    let first = healthy_report(&api).await;
    let second = healthy_report(&api).await;
    accept.abort();
    assert_eq!(first["gust"]["broker"]["status"], "unhealthy", "{first}");
    assert_eq!(second["gust"]["broker"], first["gust"]["broker"]);
    assert_eq!(attempts.load(Ordering::SeqCst), 1, "the second request reconnected instead of reusing the result");
}
