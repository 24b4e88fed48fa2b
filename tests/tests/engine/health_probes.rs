//! The scheduler's and the worker's ops server answer Kubernetes' probes:
//! `/healthz` while their loops run, `/readyz` once the database and (for the
//! worker) the broker are there, and 503 with the reason when they are not.

use std::time::Duration;

use gust_shared::settings::Settings;
use gust_tests::{free_address, isolated_settings, Deadline};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// `GET http://{address}{path}`: status and JSON body, or `None` while nothing answers.
async fn probe(address: &str, path: &str) -> Option<(u16, Value)> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().ok()?;
    let response = client.get(format!("http://{address}{path}")).send().await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.json().await.unwrap_or(Value::Null)))
}

/// Polls `path` until it answers `status`, and returns the body.
async fn wait_for(address: &str, path: &str, status: u16) -> Value {
    let deadline = Deadline::new(format!("{path} on {address} to answer {status}"));
    loop {
        deadline.check();
        match probe(address, path).await {
            Some((got, body)) if got == status => return body,
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

fn with_bind(settings: &Settings, bind: &str) -> Settings {
    let mut settings = settings.clone();
    settings.health.bind = bind.to_string();
    settings
}

#[tokio::test]
async fn scheduler_and_worker_are_live_and_ready_on_their_ops_servers() {
    let settings = isolated_settings().await;
    let (scheduler_at, worker_at) = (free_address().await, free_address().await);
    let stop = CancellationToken::new();
    let scheduler =
        tokio::spawn(gust_scheduler::run(with_bind(&settings, &scheduler_at), stop.clone().cancelled_owned()));
    let worker = tokio::spawn(gust_worker::run(with_bind(&settings, &worker_at), stop.clone().cancelled_owned()));

    for (address, component) in [(&scheduler_at, "scheduler"), (&worker_at, "worker")] {
        let ready = wait_for(address, "/readyz", 200).await;
        assert_eq!((ready["status"].as_str(), ready["component"].as_str()), (Some("ok"), Some(component)), "{ready}");
        let live = wait_for(address, "/healthz", 200).await;
        assert_eq!(live["status"], "ok", "{live}");
    }

    stop.cancel();
    scheduler.await.expect("scheduler task").expect("scheduler stops cleanly");
    worker.await.expect("worker task").expect("worker stops cleanly");
    assert!(probe(&worker_at, "/healthz").await.is_none(), "the ops server stops with its worker");
    gust_shared::db::drop_database(&settings.database.url).await.expect("dropping the test database");
}

#[tokio::test]
async fn a_worker_whose_broker_does_not_answer_is_live_but_not_ready_and_says_why() {
    let mut settings = isolated_settings().await;
    // A port that accepts connections and never speaks AMQP: the worker waits in its first connect.
    let silent_broker = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding the silent broker");
    let broker_at = silent_broker.local_addr().expect("silent broker address");
    let held = tokio::spawn(async move {
        let mut connections = Vec::new();
        while let Ok((socket, _)) = silent_broker.accept().await {
            connections.push(socket);
        }
    });
    settings.amqp.url = format!("amqp://guest:guest@{}/%2f", broker_at);
    let worker_at = free_address().await;
    let worker = tokio::spawn(gust_worker::run(with_bind(&settings, &worker_at), std::future::pending()));

    let not_ready = wait_for(&worker_at, "/readyz", 503).await;
    assert_eq!(not_ready["reason"], "not connected to RabbitMQ", "{not_ready}");
    assert_eq!(wait_for(&worker_at, "/healthz", 200).await["status"], "ok");

    worker.abort();
    held.abort();
    gust_shared::db::drop_database(&settings.database.url).await.expect("dropping the test database");
}
