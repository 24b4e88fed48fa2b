//! The page shell and the small pieces every page uses: navigation, state
//! colours (as classes, so the CSP needs no inline style), times, durations,
//! the CSRF field and pagination.

use axum::http::Method;
use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};

use super::{assets, session::Session};

/// htmx's settings: no inline indicator styles (the CSP forbids them), no eval, no script tags in swaps.
const HTMX_CONFIG: &str = r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"historyCacheSize":0,"selfRequestsOnly":true}"#;

/// The navigation entry a page belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    /// `/`.
    Home,
    /// `/dags` and everything under it.
    Dags,
    /// `/pools`.
    Pools,
    /// `/variables`.
    Variables,
    /// `/import-errors`.
    ImportErrors,
    /// `/dead-letters`.
    DeadLetters,
    /// `/users`.
    Users,
}

/// A full page for a signed-in user: header with navigation and the user, then `content`.
pub(crate) fn page(session: &Session, title: &str, active: Nav, content: Markup) -> Markup {
    let entries: [(Nav, &str, &str, bool); 7] = [
        (Nav::Home, "/", "Home", true),
        (Nav::Dags, "/dags", "DAGs", true),
        (Nav::Pools, "/pools", "Pools", true),
        (Nav::Variables, "/variables", "Variables", true),
        (Nav::ImportErrors, "/import-errors", "Import errors", true),
        (Nav::DeadLetters, "/dead-letters", "Dead letters", true),
        (Nav::Users, "/users", "Users", session.may(Method::GET, "/api/v2/gust/users")),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body hx-headers=(format!(r#"{{"X-CSRF-Token":"{}"}}"#, session.csrf_token())) {
                header.top {
                    a.brand href="/" { "gust" }
                    nav aria-label="Main" {
                        @for (nav, href, label, shown) in entries {
                            @if shown {
                                a href=(href) aria-current=[(nav == active).then_some("page")] { (label) }
                            }
                        }
                    }
                    div.who {
                        span { (session.user.username) " · " (session.user.role) }
                        form method="post" action="/logout" {
                            (csrf_field(session))
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                main { (content) }
            }
        }
    }
}

/// A page without navigation (login, errors).
pub(crate) fn bare_page(title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body.bare { (content) }
        }
    }
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="htmx-config" content=(HTMX_CONFIG);
            title { (title) " · gust" }
            link rel="stylesheet" href=(assets::css_href());
            script src=(assets::htmx_href()) defer {}
        }
    }
}

/// The hidden field that carries the session's CSRF token in a form.
pub(crate) fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf_token()); }
}

/// Every state the UI colours, task and run states alike, with its class.
const STATE_CLASSES: [(&str, &str); 14] = [
    ("success", "s-success"),
    ("failed", "s-failed"),
    ("running", "s-running"),
    ("queued", "s-queued"),
    ("scheduled", "s-scheduled"),
    ("up_for_retry", "s-up_for_retry"),
    ("up_for_reschedule", "s-up_for_reschedule"),
    ("upstream_failed", "s-upstream_failed"),
    ("skipped", "s-skipped"),
    ("removed", "s-removed"),
    ("deferred", "s-deferred"),
    ("restarting", "s-restarting"),
    ("none", "s-none"),
    ("", "s-none"),
];

/// The CSS class that colours `state` (`s-none` for no state or an unknown one).
pub(crate) fn state_class(state: Option<&str>) -> &'static str {
    let state = state.unwrap_or("none");
    STATE_CLASSES.iter().find(|(name, _)| *name == state).map_or("s-none", |(_, class)| class)
}

/// A coloured badge with the state's name (`no status` for none).
pub(crate) fn state_badge(state: Option<&str>) -> Markup {
    let label = match state {
        None | Some("none") | Some("") => "no status",
        Some(state) => state,
    };
    html! { span class={ "badge " (state_class(state)) } { (label) } }
}

/// A time as `2026-11-30 04:02:16 UTC` in a `<time>` element, or a dash.
pub(crate) fn time(at: Option<DateTime<Utc>>) -> Markup {
    match at {
        Some(at) => html! { time datetime=(at.to_rfc3339()) { (at.format("%Y-%m-%d %H:%M:%S UTC")) } },
        None => html! { span.muted { "–" } },
    }
}

/// A duration in seconds as `1h 02m`, `3m 05s`, `4.2s`, or a dash.
pub(crate) fn duration(seconds: Option<f64>) -> String {
    let Some(seconds) = seconds.filter(|s| s.is_finite() && *s >= 0.0) else {
        return "–".into();
    };
    if seconds < 60.0 {
        return format!("{seconds:.1}s");
    }
    let whole = seconds.round() as u64;
    let (h, m, s) = (whole / 3600, whole % 3600 / 60, whole % 60);
    if h > 0 {
        format!("{h}h {m:02}m")
    } else {
        format!("{m}m {s:02}s")
    }
}

/// Seconds from `start` to `end` (or to now while it lasts).
pub(crate) fn seconds_between(start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> Option<f64> {
    let start = start?;
    let end = end.unwrap_or_else(Utc::now);
    Some((end - start).num_milliseconds() as f64 / 1000.0)
}

/// Previous/next links for a list of `total` items shown `limit` at a time from `offset`;
/// `link(offset)` builds the URL of another page.
pub(crate) fn pager(total: i64, limit: i64, offset: i64, link: impl Fn(i64) -> String) -> Markup {
    let limit = limit.max(1);
    let last_page = (total - 1).max(0) / limit;
    let page = offset / limit;
    html! {
        nav.pager aria-label="Pages" {
            @if offset > 0 { a href=(link((offset - limit).max(0))) rel="prev" { "← Previous" } }
            span { "Page " (page + 1) " of " (last_page + 1) " · " (total) " in all" }
            @if offset + limit < total { a href=(link(offset + limit)) rel="next" { "Next →" } }
        }
    }
}

/// Pretty-printed JSON in a `<pre>`, escaped.
pub(crate) fn json_block(value: &serde_json::Value) -> Markup {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    html! { pre.json { (text) } }
}

/// An error or notice sentence shown above a form.
pub(crate) fn alert(message: Option<&str>) -> Markup {
    html! { @if let Some(message) = message { p.error role="alert" { (message) } } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_person_writes_them() {
        assert_eq!(duration(Some(4.25)), "4.2s");
        assert_eq!(duration(Some(185.0)), "3m 05s");
        assert_eq!(duration(Some(3720.0)), "1h 02m");
        assert_eq!(duration(None), "–");
    }

    #[test]
    fn unknown_states_get_the_no_status_colour() {
        assert_eq!(state_class(Some("success")), "s-success");
        assert_eq!(state_class(Some("<script>")), "s-none");
        assert_eq!(state_class(None), "s-none");
    }
}
