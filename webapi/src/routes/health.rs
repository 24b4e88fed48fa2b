//! `/api/v2/monitor/health` and `/api/v2/version`.

use std::time::Duration;

use axum::{extract::State, http::StatusCode, Json};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::AppState;

/// How long the health check waits for the database.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// Airflow's `HealthInfoResponse`.
#[derive(Debug, Serialize)]
pub(crate) struct HealthResponse {
    metadatabase: BaseInfo,
    scheduler: SchedulerInfo,
    triggerer: TriggererInfo,
    dag_processor: Option<DagProcessorInfo>,
}

/// Airflow's `BaseInfoResponse`.
#[derive(Debug, Serialize)]
struct BaseInfo {
    status: Option<&'static str>,
}

/// Airflow's `SchedulerInfoResponse`.
#[derive(Debug, Serialize)]
struct SchedulerInfo {
    status: Option<&'static str>,
    latest_scheduler_heartbeat: Option<DateTime<Utc>>,
}

/// Airflow's `TriggererInfoResponse` (gust has no triggerer).
#[derive(Debug, Serialize)]
struct TriggererInfo {
    status: Option<&'static str>,
    latest_triggerer_heartbeat: Option<DateTime<Utc>>,
}

/// Airflow's `DagProcessorInfoResponse` (gust parses DAGs in the scheduler).
#[derive(Debug, Serialize)]
struct DagProcessorInfo {
    status: Option<&'static str>,
    latest_dag_processor_heartbeat: Option<DateTime<Utc>>,
}

/// Airflow's `VersionInfo`.
#[derive(Debug, Serialize)]
pub(crate) struct VersionResponse {
    version: &'static str,
    git_version: Option<String>,
}

/// `GET /api/v2/monitor/health`: 200 when the database answers, else 503.
pub(crate) async fn health(State(state): State<AppState>) -> (StatusCode, Json<HealthResponse>) {
    let healthy = database_answers(&state).await;
    let status = if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = HealthResponse {
        metadatabase: BaseInfo { status: Some(if healthy { "healthy" } else { "unhealthy" }) },
        scheduler: SchedulerInfo { status: None, latest_scheduler_heartbeat: None },
        triggerer: TriggererInfo { status: None, latest_triggerer_heartbeat: None },
        dag_processor: None,
    };
    (status, Json(body))
}

/// True when `SELECT 1` succeeds within [`HEALTH_TIMEOUT`].
async fn database_answers(state: &AppState) -> bool {
    let check = async {
        let client = state.pool.get().await.map_err(|e| e.to_string())?;
        client.query_one("SELECT 1", &[]).await.map_err(|e| e.to_string())?;
        Ok::<(), String>(())
    };
    match tokio::time::timeout(HEALTH_TIMEOUT, check).await {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            tracing::warn!(%error, "health check: database unhealthy");
            false
        }
        Err(_) => {
            tracing::warn!(timeout_s = HEALTH_TIMEOUT.as_secs(), "health check: database did not answer in time");
            false
        }
    }
}

/// `GET /api/v2/version`
pub(crate) async fn version() -> Json<VersionResponse> {
    Json(VersionResponse { version: env!("CARGO_PKG_VERSION"), git_version: None })
}
