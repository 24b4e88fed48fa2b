//! `/api/v2/gust/deadLetters` (gust only): task messages that ended on the
//! dead queue (unparseable, unknown schema version, over the delivery limit),
//! and why.

use axum::{extract::State, Json};
use chrono::{DateTime, Utc};
use gust_shared::db::{self, dead_letters::DeadLetter};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::pagination::PageParams;
use crate::{error::ApiError, extract::ApiQuery, AppState};

/// One dead-lettered message.
#[derive(Debug, Serialize, ToSchema)]
struct DeadLetterResponse {
    id: i64,
    queue: String,
    routing_key: String,
    reason: String,
    detail: String,
    ti_id: Option<Uuid>,
    dag_id: Option<String>,
    dag_run_id: Option<String>,
    task_id: Option<String>,
    try_number: Option<i32>,
    deliveries: Option<i64>,
    body: String,
    received_at: Option<DateTime<Utc>>,
}

/// A page of dead letters, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeadLetterCollection {
    dead_letters: Vec<DeadLetterResponse>,
    total_entries: i64,
}

impl From<DeadLetter> for DeadLetterResponse {
    fn from(letter: DeadLetter) -> Self {
        Self {
            id: letter.id,
            queue: letter.queue,
            routing_key: letter.routing_key,
            reason: letter.reason,
            detail: letter.detail,
            ti_id: letter.ti_id,
            dag_id: letter.dag_id,
            dag_run_id: letter.run_id,
            task_id: letter.task_id,
            try_number: letter.try_number,
            deliveries: letter.deliveries,
            body: letter.body,
            received_at: letter.received_at,
        }
    }
}

/// `GET /api/v2/gust/deadLetters?limit&offset`
#[utoipa::path(get, path = "/api/v2/gust/deadLetters", tag = "gust", params(PageParams), responses((status = 200, description = "Task messages RabbitMQ gave up on (delivery limit reached), newest first", body = DeadLetterCollection)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<DeadLetterCollection>, ApiError> {
    let page = page.page()?;
    let db = state.db().await?;
    let (letters, total_entries) = db::dead_letters::list(&db, page.limit, page.offset).await?;
    Ok(Json(DeadLetterCollection { dead_letters: letters.into_iter().map(Into::into).collect(), total_entries }))
}
