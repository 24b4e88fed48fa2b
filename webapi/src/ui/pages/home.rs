//! `/`: the health of the database, the broker, the schedulers and the
//! workers (from their heartbeats, as `GET /api/v2/monitor/health` reports
//! them), runs by state over the last 24 hours, import errors, dead letters.

use axum::{extract::State, http::Method, Extension};
use chrono::{TimeDelta, Utc};
use gust_shared::db::{self, ui::overview};
use maud::{html, Markup};
use serde_json::Value;

use crate::{
    ui::{
        api_call::Api,
        error::UiError,
        layout::{self, Nav},
        session::Session,
    },
    AppState,
};

/// Import errors and dead letters listed on the home page; the rest are on their own pages.
const LISTED: i64 = 5;

/// `GET /`.
pub(crate) async fn page(
    State(state): State<AppState>,
    Extension(api): Extension<Api>,
    session: Session,
) -> Result<Markup, UiError> {
    let health = match api.call(&session, Method::GET, "/api/v2/monitor/health", None).await {
        Ok(reply) => reply.json,
        Err(_) => Value::Null,
    };
    let db = state.db().await?;
    let since = Utc::now() - TimeDelta::hours(24);
    let (counts, (dag_total, dag_paused), (import_errors, import_error_total), (dead_letters, dead_letter_total)) = tokio::try_join!(
        overview::run_counts_since(&db, since),
        overview::dag_counts(&db),
        db::import_errors::list(&db, LISTED, 0, "timestamp DESC, id DESC"),
        db::dead_letters::list(&db, LISTED, 0),
    )?;
    let gust = &health["gust"];
    let content = html! {
        h1 { "gust" }
        section.cards aria-label="Health" {
            (status_card("Metadata database", health["metadatabase"]["status"].as_str(), None))
            (status_card("Broker (RabbitMQ)", gust["broker"]["status"].as_str(), gust["broker"]["detail"].as_str()))
            (component_card("Schedulers", health["scheduler"]["status"].as_str(), &gust["schedulers"]))
            (component_card("Workers", overall(&gust["workers"]), &gust["workers"]))
        }
        h2 { "Runs in the last 24 hours" }
        @if counts.is_empty() {
            p.muted { "No runs in the last 24 hours." }
        } @else {
            ul.counts {
                @for (state, count) in &counts {
                    li { (layout::state_badge(Some(state))) " " strong { (count) } }
                }
            }
        }
        p { a href="/dags" { (dag_total) " DAGs" } ", " (dag_paused) " paused." }
        h2 { "Import errors " span.muted { "(" (import_error_total) ")" } }
        @if import_errors.is_empty() {
            p.ok { "Every DAG file parses." }
        } @else {
            ul {
                @for error in &import_errors {
                    li { code { (error.filename) } ": " (first_line(&error.stacktrace)) }
                }
            }
            p { a href="/import-errors" { "All import errors →" } }
        }
        h2 { "Dead letters " span.muted { "(" (dead_letter_total) ")" } }
        @if dead_letters.is_empty() {
            p.ok { "No task message was dead-lettered." }
        } @else {
            ul {
                @for letter in &dead_letters {
                    li { (layout::time(letter.received_at)) " " code { (letter.queue) } ": " (letter.reason) }
                }
            }
            p { a href="/dead-letters" { "All dead letters →" } }
        }
    };
    Ok(layout::page(&session, "Home", Nav::Home, content))
}

/// `healthy` when any listed component is, `unhealthy` when some are listed but none is.
fn overall(components: &Value) -> Option<&'static str> {
    let list = components.as_array()?;
    if list.is_empty() {
        return None;
    }
    Some(if list.iter().any(|c| c["status"] == "healthy") { "healthy" } else { "unhealthy" })
}

fn status_card(title: &str, status: Option<&str>, detail: Option<&str>) -> Markup {
    html! {
        div.card {
            h2 { (title) }
            (status_word(status))
            @if let Some(detail) = detail { div.muted { (detail) } }
        }
    }
}

fn status_word(status: Option<&str>) -> Markup {
    match status {
        Some("healthy") => html! { span.ok { "healthy" } },
        Some(other) => html! { span.bad { (other) } },
        None => html! { span.muted { "not running" } },
    }
}

fn component_card(title: &str, status: Option<&str>, components: &Value) -> Markup {
    let list = components.as_array().map(Vec::as_slice).unwrap_or_default();
    html! {
        div.card {
            h2 { (title) }
            (status_word(status))
            ul.components {
                @for component in list {
                    li {
                        (component["hostname"].as_str().unwrap_or("?")) " (pid " (component["pid"]) ") "
                        span class=(if component["status"] == "healthy" { "ok" } else { "bad" }) {
                            (component["status"].as_str().unwrap_or("?"))
                        }
                        @if let Some(running) = component["running_tasks"].as_i64() { " · " (running) " running" }
                    }
                }
            }
        }
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::api_call::path;

    #[test]
    fn workers_are_healthy_when_any_of_them_is() {
        assert_eq!(overall(&serde_json::json!([])), None);
        assert_eq!(overall(&serde_json::json!([{"status": "stopped"}, {"status": "healthy"}])), Some("healthy"));
        assert_eq!(overall(&serde_json::json!([{"status": "unhealthy"}])), Some("unhealthy"));
    }

    #[test]
    fn links_are_built_from_encoded_segments() {
        assert_eq!(path(&["dags", "a b"]), "/dags/a%20b");
    }
}
