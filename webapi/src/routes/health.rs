//! `/api/v2/monitor/health` and `/api/v2/version`.

use std::time::{Duration, Instant};

use axum::{extract::State, http::StatusCode, Json};
use chrono::{DateTime, TimeDelta, Utc};
use gust_shared::db::{
    heartbeats::{self, Heartbeat},
    task_instances::listing::{self, OperatorWait},
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;

/// How long the health check waits for the database.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the health check waits for the broker to accept a connection.
const BROKER_TIMEOUT: Duration = Duration::from_secs(3);

/// How long closing the health check's broker connection may take before it is dropped instead.
const BROKER_CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a broker check result is reused, so frequent health probes open few connections.
const BROKER_CACHE_TTL: Duration = Duration::from_secs(5);

/// The connection name the health check shows in the broker's management UI.
const BROKER_CONNECTION_NAME: &str = "gust-webapi-health";

/// Components whose last heartbeat is older than this are left out of the `gust` lists.
const LISTED_WITHIN: TimeDelta = TimeDelta::hours(24);

/// Most schedulers, and most workers, listed in the `gust` section.
const MAX_LISTED: usize = 100;

/// Airflow's `HealthInfoResponse`, plus gust's own components.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HealthResponse {
    metadatabase: BaseInfo,
    scheduler: SchedulerInfo,
    triggerer: TriggererInfo,
    dag_processor: Option<DagProcessorInfo>,
    gust: GustHealth,
}

/// Airflow's `BaseInfoResponse`.
#[derive(Debug, Serialize, ToSchema)]
struct BaseInfo {
    status: Option<&'static str>,
}

/// Airflow's `SchedulerInfoResponse`.
#[derive(Debug, Serialize, ToSchema)]
struct SchedulerInfo {
    status: Option<&'static str>,
    latest_scheduler_heartbeat: Option<DateTime<Utc>>,
}

/// Airflow's `TriggererInfoResponse` (gust has no triggerer).
#[derive(Debug, Serialize, ToSchema)]
struct TriggererInfo {
    status: Option<&'static str>,
    latest_triggerer_heartbeat: Option<DateTime<Utc>>,
}

/// Airflow's `DagProcessorInfoResponse` (gust parses DAGs in the scheduler).
#[derive(Debug, Serialize, ToSchema)]
struct DagProcessorInfo {
    status: Option<&'static str>,
    latest_dag_processor_heartbeat: Option<DateTime<Utc>>,
}

/// gust's components: the broker, and every scheduler and worker seen in the last 24 hours.
#[derive(Debug, Serialize, ToSchema)]
struct GustHealth {
    broker: BrokerHealth,
    schedulers: Vec<ComponentInfo>,
    workers: Vec<WorkerInfo>,
    /// Custom operators that scheduled tasks wait for: no live worker of their queue advertises them.
    waiting_for_operators: Vec<OperatorWaitInfo>,
}

/// Scheduled tasks that stay `scheduled` until a worker of `queue` with `operator` starts.
#[derive(Debug, Serialize, ToSchema)]
struct OperatorWaitInfo {
    operator: String,
    queue: String,
    tasks: i64,
    /// What to do about it.
    detail: String,
}

/// Whether RabbitMQ accepted a connection; `status` is null when no broker is configured.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct BrokerHealth {
    status: Option<&'static str>,
    detail: String,
}

/// What a component's heartbeat row says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum Liveness {
    /// It heartbeated within the liveness threshold.
    Healthy,
    /// Its last heartbeat is older than the threshold: hung, killed or cut off.
    Unhealthy,
    /// It recorded a clean stop.
    Stopped,
}

/// One scheduler (or the common part of a worker) in the `gust` section.
#[derive(Debug, Serialize, ToSchema)]
struct ComponentInfo {
    name: String,
    hostname: String,
    pid: i32,
    started_at: DateTime<Utc>,
    latest_heartbeat: DateTime<Utc>,
    status: Liveness,
}

/// One worker in the `gust` section.
#[derive(Debug, Serialize, ToSchema)]
struct WorkerInfo {
    #[serde(flatten)]
    component: ComponentInfo,
    running_tasks: i32,
    /// Queues it consumes.
    queues: Vec<String>,
    /// What it can run, as it advertised at start: built-ins (`kind: builtin`, the gust
    /// version) and custom operators (`kind: custom`, with what `gust-op-<name> --describe` printed).
    #[schema(value_type = Vec<Object>)]
    operators: serde_json::Value,
}

/// Airflow's `VersionInfo`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VersionResponse {
    version: &'static str,
    git_version: Option<String>,
}

/// The heartbeat rows of every scheduler and worker, with the database's clock when they were read.
#[derive(Debug)]
struct Components {
    now: DateTime<Utc>,
    schedulers: Vec<Heartbeat>,
    workers: Vec<Heartbeat>,
    operator_waits: Vec<OperatorWait>,
}

/// `GET /api/v2/monitor/health`: 200 when the database answers (whatever the other components say), else 503.
#[utoipa::path(get, path = "/api/v2/monitor/health", tag = "Monitor", responses(
    (status = 200, description = "The metadata database answers; the body reports every component", body = HealthResponse),
    (status = 503, description = "The metadata database does not answer", body = HealthResponse),
))]
pub(crate) async fn health(State(state): State<AppState>) -> (StatusCode, Json<HealthResponse>) {
    let (components, broker) = tokio::join!(read_components(&state), broker_health(&state));
    let status = if components.is_some() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let threshold = state.liveness_threshold;
    let (scheduler, schedulers, workers) = match &components {
        Some(c) => {
            let scheduler = SchedulerInfo {
                status: overall_status(c.schedulers.iter().map(|hb| liveness(hb, c.now, threshold))),
                latest_scheduler_heartbeat: c.schedulers.iter().map(|hb| hb.last_heartbeat_at).max(),
            };
            let schedulers = recent(&c.schedulers, c.now).map(|hb| component_info(hb, c.now, threshold)).collect();
            let workers = recent(&c.workers, c.now)
                .map(|hb| WorkerInfo {
                    component: component_info(hb, c.now, threshold),
                    running_tasks: hb.running_tasks,
                    queues: hb.queues.clone(),
                    operators: hb.operators.clone(),
                })
                .collect();
            (scheduler, schedulers, workers)
        }
        None => (SchedulerInfo { status: None, latest_scheduler_heartbeat: None }, Vec::new(), Vec::new()),
    };
    let waiting_for_operators = components.iter().flat_map(|c| &c.operator_waits).map(operator_wait_info).collect();
    let body = HealthResponse {
        metadatabase: BaseInfo { status: Some(if components.is_some() { "healthy" } else { "unhealthy" }) },
        scheduler,
        triggerer: TriggererInfo { status: None, latest_triggerer_heartbeat: None },
        dag_processor: None,
        gust: GustHealth { broker, schedulers, workers, waiting_for_operators },
    };
    (status, Json(body))
}

/// The health entry of an operator that scheduled tasks wait for, with what to do.
fn operator_wait_info(wait: &OperatorWait) -> OperatorWaitInfo {
    OperatorWaitInfo {
        operator: wait.operator.clone(),
        queue: wait.queue.clone(),
        tasks: wait.tasks,
        detail: format!(
            "{} task(s) stay scheduled: {}",
            wait.tasks,
            heartbeats::unserved_operator(&wait.operator, &wait.queue)
        ),
    }
}

/// `stopped` once it recorded a stop, else `healthy` while its last heartbeat is younger than `threshold`.
fn liveness(heartbeat: &Heartbeat, now: DateTime<Utc>, threshold: Duration) -> Liveness {
    if heartbeat.stopped_at.is_some() {
        return Liveness::Stopped;
    }
    let threshold = TimeDelta::from_std(threshold).unwrap_or(TimeDelta::MAX);
    if now.signed_duration_since(heartbeat.last_heartbeat_at) < threshold {
        Liveness::Healthy
    } else {
        Liveness::Unhealthy
    }
}

/// Airflow's summary: healthy if any is, unhealthy if some are known but none is, null if none ever ran.
fn overall_status(statuses: impl IntoIterator<Item = Liveness>) -> Option<&'static str> {
    let mut known = false;
    for status in statuses {
        if status == Liveness::Healthy {
            return Some("healthy");
        }
        known = true;
    }
    known.then_some("unhealthy")
}

/// The components seen in the last 24 hours, newest first, at most [`MAX_LISTED`].
fn recent(heartbeats: &[Heartbeat], now: DateTime<Utc>) -> impl Iterator<Item = &Heartbeat> {
    let since = now - LISTED_WITHIN;
    heartbeats.iter().filter(move |hb| hb.last_heartbeat_at >= since).take(MAX_LISTED)
}

/// The `gust` section entry of one component.
fn component_info(heartbeat: &Heartbeat, now: DateTime<Utc>, threshold: Duration) -> ComponentInfo {
    ComponentInfo {
        name: heartbeat.name.clone(),
        hostname: heartbeat.hostname.clone(),
        pid: heartbeat.pid,
        started_at: heartbeat.started_at,
        latest_heartbeat: heartbeat.last_heartbeat_at,
        status: liveness(heartbeat, now, threshold),
    }
}

/// The heartbeat rows, or `None` when the database does not answer within [`HEALTH_TIMEOUT`].
async fn read_components(state: &AppState) -> Option<Components> {
    let read = async {
        let client = state.pool.get().await.map_err(|e| e.to_string())?;
        let now: DateTime<Utc> = client.query_one("SELECT now()", &[]).await.map_err(|e| e.to_string())?.get(0);
        let schedulers = heartbeats::list(&client, "scheduler").await.map_err(|e| e.to_string())?;
        let workers = heartbeats::list(&client, "worker").await.map_err(|e| e.to_string())?;
        let operator_waits = listing::operator_waits(&client).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(Components { now, schedulers, workers, operator_waits })
    };
    match tokio::time::timeout(HEALTH_TIMEOUT, read).await {
        Ok(Ok(components)) => Some(components),
        Ok(Err(error)) => {
            tracing::warn!(%error, "health check: database unhealthy");
            None
        }
        Err(_) => {
            tracing::warn!(timeout_s = HEALTH_TIMEOUT.as_secs(), "health check: database did not answer in time");
            None
        }
    }
}

/// The broker's health, checked at most once per [`BROKER_CACHE_TTL`] (concurrent requests wait for one check).
async fn broker_health(state: &AppState) -> BrokerHealth {
    let Some(amqp) = &state.amqp else {
        return BrokerHealth { status: None, detail: "not configured".into() };
    };
    let mut cached = state.broker_health.lock().await;
    if let Some((checked_at, health)) = cached.as_ref() {
        if checked_at.elapsed() < BROKER_CACHE_TTL {
            return health.clone();
        }
    }
    let health = check_broker(amqp).await;
    *cached = Some((Instant::now(), health.clone()));
    health
}

/// Opens and closes one connection to the broker, within [`BROKER_TIMEOUT`].
async fn check_broker(amqp: &gust_shared::settings::AmqpSettings) -> BrokerHealth {
    match tokio::time::timeout(BROKER_TIMEOUT, gust_shared::amqp::connect_to(amqp, BROKER_CONNECTION_NAME)).await {
        Ok(Ok(connection)) => {
            // A connection dropped unclosed is closed in the background by lapin; closing here is just tidier.
            let closed = tokio::time::timeout(BROKER_CLOSE_TIMEOUT, connection.close(200, "health check done".into()));
            if let Ok(Err(error)) = closed.await {
                tracing::debug!(%error, "health check: closing the broker connection failed");
            }
            BrokerHealth { status: Some("healthy"), detail: "connected".into() }
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, "health check: broker unhealthy");
            BrokerHealth { status: Some("unhealthy"), detail: error.to_string() }
        }
        Err(_) => {
            tracing::warn!(timeout_s = BROKER_TIMEOUT.as_secs(), "health check: broker did not answer in time");
            BrokerHealth {
                status: Some("unhealthy"),
                detail: format!("RabbitMQ did not accept a connection within {}s", BROKER_TIMEOUT.as_secs()),
            }
        }
    }
}

/// `GET /api/v2/version`
#[utoipa::path(get, path = "/api/v2/version", tag = "Version", responses((status = 200, body = VersionResponse)))]
pub(crate) async fn version() -> Json<VersionResponse> {
    let commit = gust_shared::cli::GIT_COMMIT;
    Json(VersionResponse {
        version: env!("CARGO_PKG_VERSION"),
        git_version: (commit != "unknown").then(|| commit.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const THRESHOLD: Duration = Duration::from_secs(60);

    fn heartbeat(now: DateTime<Utc>, age_s: i64, stopped: bool) -> Heartbeat {
        let last = now - TimeDelta::seconds(age_s);
        Heartbeat {
            name: "worker-1".into(),
            kind: "worker".into(),
            hostname: "host".into(),
            pid: 42,
            started_at: last - TimeDelta::hours(1),
            last_heartbeat_at: last,
            running_tasks: 0,
            stopped_at: stopped.then_some(last),
            queues: vec!["default".into()],
            operators: serde_json::json!([]),
        }
    }

    #[test]
    fn a_heartbeat_younger_than_the_threshold_is_healthy() {
        let now = Utc::now();
        assert_eq!(liveness(&heartbeat(now, 0, false), now, THRESHOLD), Liveness::Healthy);
        assert_eq!(liveness(&heartbeat(now, 59, false), now, THRESHOLD), Liveness::Healthy);
    }

    #[test]
    fn a_heartbeat_as_old_as_the_threshold_or_older_is_unhealthy() {
        let now = Utc::now();
        assert_eq!(liveness(&heartbeat(now, 60, false), now, THRESHOLD), Liveness::Unhealthy);
        assert_eq!(liveness(&heartbeat(now, 3600, false), now, THRESHOLD), Liveness::Unhealthy);
    }

    #[test]
    fn a_component_that_recorded_a_stop_is_stopped_however_fresh_its_heartbeat() {
        let now = Utc::now();
        assert_eq!(liveness(&heartbeat(now, 0, true), now, THRESHOLD), Liveness::Stopped);
        assert_eq!(liveness(&heartbeat(now, 3600, true), now, THRESHOLD), Liveness::Stopped);
    }

    #[test]
    fn a_heartbeat_ahead_of_the_clock_is_healthy() {
        let now = Utc::now();
        assert_eq!(liveness(&heartbeat(now, -5, false), now, THRESHOLD), Liveness::Healthy);
    }

    #[test]
    fn the_scheduler_is_healthy_when_any_scheduler_is() {
        let statuses = [Liveness::Stopped, Liveness::Unhealthy, Liveness::Healthy];
        assert_eq!(overall_status(statuses), Some("healthy"));
    }

    #[test]
    fn the_scheduler_is_unhealthy_when_schedulers_are_known_but_none_is_healthy() {
        assert_eq!(overall_status([Liveness::Unhealthy]), Some("unhealthy"));
        assert_eq!(overall_status([Liveness::Stopped]), Some("unhealthy"));
        assert_eq!(overall_status([Liveness::Stopped, Liveness::Unhealthy]), Some("unhealthy"));
    }

    #[test]
    fn the_scheduler_status_is_null_when_no_scheduler_ever_ran() {
        assert_eq!(overall_status([]), None);
    }

    #[test]
    fn only_components_seen_in_the_last_day_are_listed_and_at_most_a_hundred() {
        let now = Utc::now();
        let old = heartbeat(now, 25 * 3600, false);
        assert_eq!(recent(std::slice::from_ref(&old), now).count(), 0);
        let many: Vec<_> = (0..150).map(|i| heartbeat(now, i, false)).collect();
        assert_eq!(recent(&many, now).count(), MAX_LISTED);
    }

    #[test]
    fn statuses_serialize_in_lowercase() {
        let json = serde_json::to_value([Liveness::Healthy, Liveness::Unhealthy, Liveness::Stopped]).unwrap();
        assert_eq!(json, serde_json::json!(["healthy", "unhealthy", "stopped"]));
    }
}
