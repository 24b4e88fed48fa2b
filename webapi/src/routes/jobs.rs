//! `/api/v2/jobs`: gust's schedulers and workers as Airflow's jobs, from their heartbeats.

use axum::{extract::State, Json};
use chrono::{DateTime, Utc};
use gust_shared::db::{
    self,
    jobs::{JobFilter, JobRow, ORDER_FIELDS},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::pagination::{order_by_param, OrderParams, PageParams};
use crate::{error::ApiError, extract::ApiQuery, AppState};

/// Airflow's `JobResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct JobResponse {
    /// Stable per process name (see [`JobRow::id`]).
    id: i64,
    /// Always `null`: gust's jobs do not belong to a DAG.
    dag_id: Option<String>,
    /// `running`, `success` (stopped cleanly) or `failed` (stopped heartbeating).
    state: Option<String>,
    /// `SchedulerJob` or `WorkerJob`.
    job_type: Option<String>,
    start_date: Option<DateTime<Utc>>,
    end_date: Option<DateTime<Utc>>,
    latest_heartbeat: Option<DateTime<Utc>>,
    /// Always `null`: gust has one executor (RabbitMQ and its workers).
    executor_class: Option<String>,
    hostname: Option<String>,
    /// Always `null`: gust does not record the operating-system user.
    unixname: Option<String>,
    /// Always `null`, as `dag_id`.
    dag_display_name: Option<String>,
}

/// Airflow's `JobCollectionResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct JobCollection {
    jobs: Vec<JobResponse>,
    total_entries: i64,
}

impl From<JobRow> for JobResponse {
    fn from(job: JobRow) -> Self {
        Self {
            id: job.id,
            dag_id: None,
            state: Some(job.state),
            job_type: Some(job.job_type),
            start_date: Some(job.start_date),
            end_date: job.end_date,
            latest_heartbeat: Some(job.latest_heartbeat),
            executor_class: None,
            hostname: Some(job.hostname),
            unixname: None,
            dag_display_name: None,
        }
    }
}

/// The filters of `GET /jobs` (next to `limit`, `offset` and `order_by`).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct JobFilters {
    /// Only running jobs (true) or the others (false).
    is_alive: Option<bool>,
    start_date_gte: Option<DateTime<Utc>>,
    start_date_gt: Option<DateTime<Utc>>,
    start_date_lte: Option<DateTime<Utc>>,
    start_date_lt: Option<DateTime<Utc>>,
    end_date_gte: Option<DateTime<Utc>>,
    end_date_gt: Option<DateTime<Utc>>,
    end_date_lte: Option<DateTime<Utc>>,
    end_date_lt: Option<DateTime<Utc>>,
    /// `running`, `success` or `failed`.
    job_state: Option<String>,
    /// `SchedulerJob` or `WorkerJob`.
    job_type: Option<String>,
    hostname: Option<String>,
    /// gust records no executor class, so any value matches no job.
    executor_class: Option<String>,
}

order_by_param!(JobOrder, ORDER_FIELDS);

/// `GET /api/v2/jobs`: every scheduler and worker that heartbeated (and was not cleaned up).
#[utoipa::path(get, path = "/api/v2/jobs", tag = "Job", operation_id = "get_jobs", params(JobFilters, PageParams, JobOrder), responses((status = 200, body = JobCollection)))]
pub(crate) async fn get_jobs(
    State(state): State<AppState>,
    ApiQuery(filters): ApiQuery<JobFilters>,
    ApiQuery(page): ApiQuery<PageParams>,
    ApiQuery(order): ApiQuery<OrderParams>,
) -> Result<Json<JobCollection>, ApiError> {
    let page = page.page()?;
    let order = order.sql(ORDER_FIELDS, "id ASC", "id")?;
    let empty = |value: Option<String>| value.filter(|v| !v.is_empty());
    if filters.executor_class.as_deref().is_some_and(|v| !v.is_empty()) {
        return Ok(Json(JobCollection { jobs: Vec::new(), total_entries: 0 }));
    }
    let filter = JobFilter {
        state: empty(filters.job_state),
        job_type: empty(filters.job_type),
        hostname: empty(filters.hostname),
        is_alive: filters.is_alive,
        start: [filters.start_date_gte, filters.start_date_gt, filters.start_date_lte, filters.start_date_lt],
        end: [filters.end_date_gte, filters.end_date_gt, filters.end_date_lte, filters.end_date_lt],
    };
    let db = state.db().await?;
    let alive_within = state.liveness_threshold.as_secs_f64();
    let (jobs, total_entries) = db::jobs::list(&db, alive_within, &filter, &order, page.limit, page.offset).await?;
    Ok(Json(JobCollection { jobs: jobs.into_iter().map(JobResponse::from).collect(), total_entries }))
}
