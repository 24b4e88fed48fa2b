//! The dead letters page, `/dead-letters`: task messages the broker gave up
//! on, newest first, with why and the message.

use axum::extract::{RawQuery, State};
use gust_shared::db;
use maud::{html, Markup};
use serde_json::Value;

use super::{ListQuery, PAGE_SIZE};
use crate::{
    ui::{
        api_call::path,
        error::UiError,
        layout::{self, Nav},
        pages::run::query,
        session::Session,
    },
    AppState,
};

/// A dead letter's body: pretty JSON when it is JSON, else the text as received.
fn message_block(body: &str) -> Markup {
    match serde_json::from_str::<Value>(body) {
        Ok(json) => layout::json_block(&json),
        Err(_) => html! { pre.message { (body) } },
    }
}

/// The task instance a dead letter names, linked when it names one fully.
fn letter_task(letter: &db::dead_letters::DeadLetter) -> Markup {
    match (&letter.dag_id, &letter.run_id, &letter.task_id) {
        (Some(dag_id), Some(run_id), Some(task_id)) => html! {
            a href=(path(&["dags", dag_id, "runs", run_id, "tasks", task_id])) { (dag_id) " / " (run_id) " / " (task_id) }
            @if let Some(try_number) = letter.try_number { " (try " (try_number) ")" }
        },
        _ => html! { span.muted { "–" } },
    }
}

/// `GET /dead-letters`: task messages the broker gave up on, newest first, with why and the message.
pub(crate) async fn dead_letters(
    State(state): State<AppState>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> Result<Markup, UiError> {
    let offset = query::<ListQuery>(raw.as_deref())?.offset()?;
    let db = state.db().await?;
    let (letters, total) = db::dead_letters::list(&db, PAGE_SIZE, offset).await?;
    drop(db);
    let content = html! {
        h1 { "Dead letters" }
        p.muted { "Task messages that reached the dead queue: unparseable, of an unknown schema version, or over the delivery limit." }
        @if total == 0 { p.ok { "No message was dead-lettered." } }
        @else {
            table #dead-letters {
                thead { tr { th { "Id" } th { "Queue" } th { "Reason" } th { "Received" } th { "Task" } th { "Message" } } }
                tbody {
                    @for letter in &letters {
                        tr data-id=(letter.id) {
                            td { (letter.id) }
                            td.queue { (letter.queue) @if !letter.routing_key.is_empty() { br; span.muted { (letter.routing_key) } } }
                            td.reason {
                                strong { (letter.reason) }
                                @if !letter.detail.is_empty() { p.detail { (letter.detail) } }
                                @if let Some(deliveries) = letter.deliveries { p.muted { (deliveries) " deliveries" } }
                            }
                            td { (layout::time(letter.received_at)) }
                            td { (letter_task(letter)) }
                            td.message { (message_block(&letter.body)) }
                        }
                    }
                }
            }
        }
        (layout::pager(total, PAGE_SIZE, offset, |offset| format!("/dead-letters?offset={offset}")))
    };
    Ok(layout::page(&session, "Dead letters", Nav::DeadLetters, content))
}
