//! The log of one try of a task instance, and its routes.
//!
//! The log comes a page of [`PAGE_LINES`] at a time: the page shows the
//! first, a "Load more" link fetches the next as a fragment, and while the
//! try runs `#log-tail` polls for new lines. A finished try's log never
//! changes, so its fragments are immutable and the browser asks once; the
//! raw download streams the log in chunks.

use std::borrow::Cow;

use axum::{
    body::Body,
    extract::{Path, RawQuery, State},
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
};
use gust_shared::{
    db::{self, logs::LogLine, task_instances::listing::TaskInstanceRow, ui::run_pages},
    state::TaskState,
};
use maud::{html, Markup};

use super::{selected_try, ti_or_404, Checked, TaskQuery};
use crate::ui::{api_call::path, error::UiError, session::Session};
use crate::AppState;

/// Log lines per page and per fragment.
const PAGE_LINES: i64 = 1000;
/// How a finished try's log fragment is cached: its content never changes.
const IMMUTABLE: &str = "private, max-age=31536000, immutable";

/// True while try `try_number` of `ti` may still write lines.
pub(super) fn try_is_live(ti: &TaskInstanceRow, try_number: i32) -> bool {
    try_number == ti.try_number && matches!(ti.state, TaskState::Queued | TaskState::Running)
}

/// The addresses of one try's log views.
pub(super) struct LogView<'a> {
    /// The task page's path.
    pub(super) base: &'a str,
    /// The task instance's map index, -1 when not mapped.
    pub(super) map_index: i32,
    /// The try whose log this is.
    pub(super) try_number: i32,
    /// Show each line's time.
    pub(super) ts: bool,
}

impl LogView<'_> {
    /// The query naming this try, from `after`, as a poll when `tail`.
    pub(super) fn query(&self, after: i64, tail: bool) -> String {
        let mut q = format!("try={}", self.try_number);
        if after > 0 {
            q.push_str(&format!("&after={after}"));
        }
        if self.map_index >= 0 {
            q.push_str(&format!("&map_index={}", self.map_index));
        }
        if tail {
            q.push_str("&tail=1");
        }
        if self.ts {
            q.push_str("&ts=1");
        }
        q
    }

    /// The fragment of lines after `after`.
    fn fragment(&self, after: i64, tail: bool) -> String {
        format!("{}/log?{}", self.base, self.query(after, tail))
    }

    /// The task page showing lines after `after` (the link without JavaScript).
    pub(super) fn page(&self, after: i64) -> String {
        format!("{}?{}#log", self.base, self.query(after, false))
    }

    /// The raw download.
    pub(super) fn download(&self) -> String {
        let mapped = if self.map_index >= 0 { format!("&map_index={}", self.map_index) } else { String::new() };
        format!("{}/log.txt?try={}{mapped}", self.base, self.try_number)
    }
}

/// A log line as shown: CSI escape sequences (colours, cursor moves) removed;
/// other control characters but tab shown as visible symbols.
pub(crate) fn display_line(line: &str) -> Cow<'_, str> {
    if !line.chars().any(|c| c.is_control() && c != '\t') {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' if chars.peek() == Some(&'[') => {
                chars.next();
                skip_csi(&mut chars);
            }
            '\u{9b}' => skip_csi(&mut chars),
            '\t' => out.push('\t'),
            '\u{0}'..='\u{1f}' => out.push(char::from_u32(0x2400 + u32::from(c)).unwrap_or('\u{fffd}')),
            '\u{7f}' => out.push('\u{2421}'),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Skips the rest of a CSI sequence: parameter and intermediate bytes, then its final byte.
fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(&c) = chars.peek() {
        match c {
            '\u{20}'..='\u{3f}' => {
                chars.next();
            }
            '\u{40}'..='\u{7e}' => {
                chars.next();
                return;
            }
            _ => return,
        }
    }
}

/// The class of a line of `stream`.
fn line_class(stream: &str) -> &'static str {
    match stream {
        "stderr" => "line stderr",
        "gust" => "line gust",
        _ => "line stdout",
    }
}

/// Log lines as `.line` elements.
pub(super) fn log_lines(lines: &[LogLine], ts: bool) -> Markup {
    html! {
        @for line in lines {
            div class=(line_class(&line.stream)) {
                @if ts { span.ts { (line.ts.format("%H:%M:%S%.3f")) } " " }
                (display_line(&line.line))
            }
        }
    }
}

/// What follows a page of lines: "Load more" when more are stored (unless a
/// live tail is catching up), the live tail while the try runs, or nothing.
pub(super) fn log_next(view: &LogView<'_>, last_id: i64, more: bool, live: bool, tail: bool) -> Markup {
    html! {
        @if more && !(tail && live) {
            a #log-more.button href=(view.page(last_id)) hx-get=(view.fragment(last_id, false)) hx-swap="outerHTML" {
                "Load more"
            }
        } @else if live {
            div #log-tail hx-get=(view.fragment(last_id, true)) hx-trigger="every 2s" hx-swap="outerHTML" {
                span.muted { "Following the log while the try runs…" }
            }
        }
    }
}

/// Up to a page of lines after `after`, and whether more are stored.
pub(super) async fn log_page(
    db: &impl db::GenericClient,
    ti: &TaskInstanceRow,
    try_number: i32,
    after: i64,
) -> Result<(Vec<LogLine>, bool), UiError> {
    let mut lines = db::logs::read(db, ti.id, try_number, after, PAGE_LINES + 1).await?;
    let more = i64::try_from(lines.len()).unwrap_or(i64::MAX) > PAGE_LINES;
    lines.truncate(usize::try_from(PAGE_LINES).unwrap_or(usize::MAX));
    Ok((lines, more))
}

/// What a log route reads: a connection, the checked query, the task instance
/// and the selected try; 404 when the task has not run yet.
async fn log_target(
    state: &AppState,
    (dag_id, run_id, task_id): (&str, &str, &str),
    raw: Option<&str>,
) -> Result<(deadpool_postgres::Object, Checked, TaskInstanceRow, i32), UiError> {
    let asked = TaskQuery::checked(raw)?;
    let db = state.db().await?;
    let ti = ti_or_404(&db, dag_id, run_id, task_id, asked.map_index.unwrap_or(-1)).await?;
    let Some(try_number) = selected_try(&ti, asked.try_number)? else {
        return Err(UiError::NotFound(format!("task `{task_id}` has not run yet, so it has no log")));
    };
    Ok((db, asked, ti, try_number))
}

/// `GET …/tasks/{task_id}/log?try&after&map_index&tail&ts`: the lines after
/// `after` and what follows them; immutable once the try has finished.
pub(crate) async fn log_fragment(
    State(state): State<AppState>,
    _session: Session,
    Path((dag_id, run_id, task_id)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, UiError> {
    let (db, asked, ti, try_number) = log_target(&state, (&dag_id, &run_id, &task_id), raw.as_deref()).await?;
    let (lines, more) = log_page(&db, &ti, try_number, asked.after).await?;
    let live = try_is_live(&ti, try_number);
    let base = path(&["dags", &dag_id, "runs", &run_id, "tasks", &task_id]);
    let view = LogView { base: &base, map_index: ti.map_index, try_number, ts: asked.ts };
    let last_id = lines.last().map_or(asked.after, |l| l.id);
    let fragment = html! { (log_lines(&lines, asked.ts)) (log_next(&view, last_id, more, live, asked.tail)) };
    let cache = if live { "no-store" } else { IMMUTABLE };
    Ok(([(header::CACHE_CONTROL, cache)], fragment).into_response())
}

/// A file name of only letters, digits, `.`, `_` and `-`, at most 200 characters.
fn file_name(parts: &[&str]) -> String {
    let name: String = parts
        .join("__")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .take(200)
        .collect();
    format!("{name}.log")
}

/// `GET …/tasks/{task_id}/log.txt?try&map_index`: the try's whole log as a
/// plain-text attachment, streamed in chunks.
pub(crate) async fn log_download(
    State(state): State<AppState>,
    _session: Session,
    Path((dag_id, run_id, task_id)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, UiError> {
    let (db, _, ti, try_number) = log_target(&state, (&dag_id, &run_id, &task_id), raw.as_deref()).await?;
    let task = if ti.map_index >= 0 { format!("{task_id}-{}", ti.map_index) } else { task_id.clone() };
    let name = file_name(&[&dag_id, &run_id, &task, &try_number.to_string()]);
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .map_err(|e| UiError::Internal(format!("a sanitised file name is not a header value: {e}")))?;
    let body = Body::from_stream(run_pages::log_text(db, ti.id, try_number));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(header::CONTENT_DISPOSITION, disposition);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_sequences_are_stripped_and_other_controls_shown() {
        assert_eq!(display_line("\u{1b}[1;31mred\u{1b}[0m plain"), "red plain");
        assert_eq!(display_line("\u{1b}[2K\u{1b}[1Gprogress"), "progress");
        assert_eq!(display_line("a\rb\u{7}"), "a\u{240d}b\u{2407}");
        assert_eq!(display_line("esc \u{1b}]0;title\u{7}"), "esc \u{241b}]0;title\u{2407}");
        assert_eq!(display_line("\u{9b}32mgreen"), "green");
        assert_eq!(display_line("c1 \u{85}"), "c1 \\u{85}");
        assert_eq!(display_line("tab\tstays"), "tab\tstays");
        assert!(matches!(display_line("<b>plain</b>"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_cut_off_sequence_drops_only_its_own_bytes() {
        assert_eq!(display_line("x\u{1b}[31"), "x");
        assert_eq!(display_line("x\u{1b}[31\u{1b}[0my"), "xy", "the next sequence starts cleanly");
    }

    #[test]
    fn download_names_keep_only_safe_characters() {
        assert_eq!(
            file_name(&["etl", "manual__2026-01-01T00:00:00+00:00", "ex tract", "2"]),
            "etl__manual__2026-01-01T00_00_00_00_00__ex_tract__2.log"
        );
        assert_eq!(file_name(&["a\"b", "../c", "\r\n", "1"]), "a_b__.._c______1.log");
        assert!(file_name(&[&"x".repeat(500), "1"]).len() <= 204);
    }
}
