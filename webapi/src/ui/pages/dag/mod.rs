//! `/dags/{dag_id}` and its tabs: the grid of the last runs × tasks, the graph
//! of a run's DAG version, the Gantt chart of a run, the run list, the DAG's
//! source per version, and its params. Trigger and backfill have their own
//! module; every tab shares [`dag_header`].
//!
//! This module holds what the tabs share: the header and its tab bar, the
//! DAG and run look-ups, the query helpers, the one state of a group of task
//! instances, and the run picker and live section of the graph and Gantt
//! tabs. Each tab's handler lives in its own module (`grid`, `graph`,
//! `gantt`, `runs`, `code`, `params`) and is re-exported here for the routes.

mod code;
mod gantt;
mod graph;
mod grid;
mod params;
mod runs;

pub(crate) use code::code;
pub(crate) use gantt::gantt;
pub(crate) use graph::graph;
pub(crate) use grid::grid;
pub(crate) use params::params;
pub(crate) use runs::runs;

use axum::http::Method;
use gust_shared::db::{
    self,
    dags::{DagRow, DagVersion},
    runs::DagRunRow,
    ui::grid::GridRun,
    GenericClient,
};
use maud::{html, Markup};
use serde::{de::DeserializeOwned, Deserialize};

use crate::ui::{
    api_call::{path, query_value},
    error::UiError,
    layout::{self, Nav},
    session::Session,
};

/// Runs the grid shows unless `?runs=` says otherwise.
const DEFAULT_RUNS: i64 = 25;
/// Most runs the grid shows.
const MAX_RUNS: i64 = 100;
/// How often a live fragment asks again.
const POLL: &str = "every 3s";

/// Airflow's order for the one state of a group of task instances (a mapped
/// task's): the first of these any member is in.
const STATE_PRIORITY: [&str; 13] = [
    "failed",
    "upstream_failed",
    "up_for_retry",
    "up_for_reschedule",
    "queued",
    "scheduled",
    "deferred",
    "running",
    "restarting",
    "none",
    "success",
    "skipped",
    "removed",
];

/// The tabs of a DAG's pages.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tab {
    /// `/dags/{dag_id}`.
    Grid,
    /// `/dags/{dag_id}/graph`.
    Graph,
    /// `/dags/{dag_id}/gantt`.
    Gantt,
    /// `/dags/{dag_id}/runs`.
    Runs,
    /// `/dags/{dag_id}/code`.
    Code,
    /// `/dags/{dag_id}/params`.
    Params,
}

/// The DAG's header (id, description, schedule, owners, tags, paused state,
/// latest version) and its tab bar with `active` marked (none: a page such as
/// the trigger form), plus trigger and backfill links for users who may.
/// `run_id` is carried to the tabs that show one run.
pub(crate) fn dag_header(
    session: &Session,
    dag: &DagRow,
    latest_version: i32,
    active: Option<Tab>,
    run_id: Option<&str>,
) -> Markup {
    let base = path(&["dags", &dag.dag_id]);
    let run_query = run_id.map(|r| format!("?run_id={}", query_value(r))).unwrap_or_default();
    let tabs = [
        (Tab::Grid, "Grid", base.clone()),
        (Tab::Graph, "Graph", format!("{base}/graph{run_query}")),
        (Tab::Gantt, "Gantt", format!("{base}/gantt{run_query}")),
        (Tab::Runs, "Runs", format!("{base}/runs")),
        (Tab::Code, "Code", format!("{base}/code{run_query}")),
        (Tab::Params, "Params", format!("{base}/params")),
    ];
    let may_trigger = session.may(Method::POST, "/api/v2/dags/{dag_id}/dagRuns");
    let may_backfill = session.may(Method::POST, "/api/v2/backfills");
    html! {
        div.dag-head {
            h1 {
                span.muted { "DAG " }
                (dag.dag_id)
                " "
                @if dag.is_paused { span.badge.paused { "paused" } } @else { span.badge.s-success { "active" } }
                @if !dag.is_active { " " span.badge.s-removed { "file gone" } }
            }
            @if let Some(description) = &dag.description { p.description { (description) } }
            dl.meta {
                dt { "Schedule" } dd { (dag.schedule.as_deref().unwrap_or("none (manual runs only)")) }
                dt { "Owners" } dd { @if dag.owners.is_empty() { span.muted { "–" } } (dag.owners.join(", ")) }
                dt { "Tags" } dd {
                    @if dag.tags.is_empty() { span.muted { "–" } }
                    @for tag in &dag.tags { span.tag { (tag) } }
                }
                dt { "Version" } dd { "v" (latest_version) }
                dt { "File" } dd { code { (dag.fileloc) } }
            }
        }
        nav.tabs aria-label="DAG views" {
            @for (tab, label, href) in tabs {
                a href=(href) aria-current=[(active == Some(tab)).then_some("page")] { (label) }
            }
            span.tab-actions {
                @if may_trigger { a #trigger-link.button href={(base) "/trigger"} { "Trigger" } }
                @if may_backfill { a #backfill-link.button href={(base) "/backfill"} { "Backfill" } }
            }
        }
    }
}

/// A DAG and its latest version, or the 404 page.
async fn dag_and_latest(db: &impl GenericClient, dag_id: &str) -> Result<(DagRow, DagVersion), UiError> {
    let dag = db::dags::get(db, dag_id).await?.ok_or_else(|| unknown_dag(dag_id))?;
    let latest = db::dags::version(db, dag.latest_version_id).await?.ok_or_else(|| {
        UiError::NotFound(format!("DAG `{dag_id}` has no stored version; wait for the scheduler to parse its file"))
    })?;
    Ok((dag, latest))
}

fn unknown_dag(dag_id: &str) -> UiError {
    UiError::NotFound(format!("there is no DAG `{dag_id}`; the DAG list shows every DAG gust knows"))
}

/// One run of the DAG by id, or the 404 page.
async fn run_or_404(db: &impl GenericClient, dag_id: &str, run_id: &str) -> Result<DagRunRow, UiError> {
    db::runs::get(db, dag_id, run_id)
        .await?
        .ok_or_else(|| UiError::NotFound(format!("DAG `{dag_id}` has no run `{run_id}`; the Runs tab lists its runs")))
}

/// The query string read as `T`; a malformed one is a 400 page.
fn query<T: DeserializeOwned + Default>(raw: Option<String>) -> Result<T, UiError> {
    match raw {
        None => Ok(T::default()),
        Some(raw) => serde_html_form::from_str(&raw)
            .map_err(|e| UiError::BadRequest(format!("this page's query string is not one it understands: {e}"))),
    }
}

/// A whole number from the query, within `min..=max`, or a 400 page naming the parameter.
fn number_param(name: &str, value: Option<&str>, default: i64, min: i64, max: i64) -> Result<i64, UiError> {
    match value.filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(text) => text.parse::<i64>().ok().filter(|n| (min..=max).contains(n)).ok_or_else(|| {
            UiError::BadRequest(format!("`{name}` must be a whole number from {min} to {max}, not `{text}`"))
        }),
    }
}

fn is_live(state: &str) -> bool {
    state == "queued" || state == "running"
}

fn rank(state: &str) -> usize {
    STATE_PRIORITY.iter().position(|s| *s == state).unwrap_or(STATE_PRIORITY.len())
}

fn state_label(state: &str) -> &str {
    if state == "none" {
        "no status"
    } else {
        state
    }
}

/// The task instances of one task in one run, counted by state.
#[derive(Default)]
struct Group<'a> {
    parts: Vec<(&'a str, i64)>,
    mapped: bool,
}

impl Group<'_> {
    /// The group's one state and how many members are in it.
    fn state(&self) -> (&str, i64) {
        self.parts.iter().min_by_key(|(s, _)| rank(s)).map_or(("none", 0), |(s, n)| (*s, *n))
    }

    fn total(&self) -> i64 {
        self.parts.iter().map(|(_, n)| n).sum()
    }

    /// `12 success, 8 running`, most important state first.
    fn summary(&self) -> String {
        let mut parts = self.parts.clone();
        parts.sort_by_key(|(s, _)| rank(s));
        parts.iter().map(|(s, n)| format!("{n} {}", state_label(s))).collect::<Vec<_>>().join(", ")
    }
}

// ---------------------------------------------------------------------------
// Graph and Gantt: one run

/// The query of the graph and Gantt tabs.
#[derive(Deserialize, Default)]
pub(crate) struct RunQuery {
    run_id: Option<String>,
    fragment: Option<String>,
}

/// The run the graph or Gantt tab shows: the one asked for, else the latest; and the recent runs to pick from.
async fn chosen_run(
    db: &impl GenericClient,
    dag_id: &str,
    run_id: Option<&str>,
) -> Result<(Option<GridRun>, Vec<GridRun>), UiError> {
    let recent = db::ui::grid::runs(db, dag_id, DEFAULT_RUNS).await?;
    let chosen = match run_id.filter(|r| !r.is_empty()) {
        None => recent.first().cloned(),
        Some(run_id) => match recent.iter().find(|r| r.run_id == run_id) {
            Some(run) => Some(run.clone()),
            None => {
                let run = run_or_404(db, dag_id, run_id).await?;
                Some(GridRun {
                    id: run.id,
                    run_id: run.run_id,
                    run_type: run.run_type,
                    state: run.state.to_string(),
                    run_after: run.run_after,
                    logical_date: run.logical_date,
                    start_date: run.start_date,
                    end_date: run.end_date,
                    dag_version_id: run.dag_version_id,
                })
            }
        },
    };
    Ok((chosen, recent))
}

/// A form choosing which recent run a tab shows.
fn run_picker(action: &str, recent: &[GridRun], chosen: Option<&GridRun>) -> Markup {
    html! {
        @if !recent.is_empty() {
            form.inline-filters method="get" action=(action) {
                label { "Run "
                    select name="run_id" {
                        @for run in recent {
                            option value=(run.run_id) selected[chosen.is_some_and(|c| c.id == run.id)] {
                                (run.run_id) " (" (run.state) ")"
                            }
                        }
                    }
                }
                " " button.secondary type="submit" { "Show" }
            }
        }
    }
}

/// A section that re-fetches itself from `url` every 3 s while `live`.
fn live_section(id: &str, url: &str, live: bool, content: Markup) -> Markup {
    html! {
        section id=(id) hx-get=[live.then_some(url)] hx-trigger=[live.then_some(POLL)] hx-swap=[live.then_some("outerHTML")] {
            (content)
        }
    }
}

/// What the graph and Gantt tabs start from: the DAG, its latest version, the
/// run shown (the one asked for, else the latest) and the version it used, and
/// the recent runs to pick from.
struct RunTab {
    dag: DagRow,
    latest: DagVersion,
    run: Option<GridRun>,
    version: DagVersion,
    recent: Vec<GridRun>,
    /// Only the live section was asked for (`?fragment=<name>`).
    fragment: bool,
}

impl RunTab {
    async fn load(db: &impl GenericClient, dag_id: &str, raw: Option<String>, name: &str) -> Result<Self, UiError> {
        let q: RunQuery = query(raw)?;
        let (dag, latest) = dag_and_latest(db, dag_id).await?;
        let (run, recent) = chosen_run(db, dag_id, q.run_id.as_deref()).await?;
        let version = match &run {
            Some(run) if run.dag_version_id != latest.id => {
                db::dags::version(db, run.dag_version_id).await?.unwrap_or_else(|| latest.clone())
            }
            _ => latest.clone(),
        };
        Ok(RunTab { dag, latest, run, version, recent, fragment: q.fragment.as_deref() == Some(name) })
    }

    /// The tab's section `#<name>`, polling while the run is live: alone when
    /// polled, else in the page under the header, the run picker and `intro`.
    fn render(&self, session: &Session, tab: Tab, name: &str, intro: Markup, body: Markup) -> Markup {
        let dag_id = &self.dag.dag_id;
        let run_id = self.run.as_ref().map(|r| r.run_id.as_str());
        let tab_path = format!("{}/{name}", path(&["dags", dag_id]));
        let live = self.run.as_ref().is_some_and(|r| is_live(&r.state));
        let url = format!("{tab_path}?fragment={name}&run_id={}", query_value(run_id.unwrap_or("")));
        let section = live_section(name, &url, live, body);
        if self.fragment {
            return section;
        }
        let content = html! {
            (dag_header(session, &self.dag, self.latest.version_number, Some(tab), run_id))
            (run_picker(&tab_path, &self.recent, self.run.as_ref()))
            (intro)
            (section)
        };
        layout::page(session, &format!("{dag_id} · {name}"), Nav::Dags, content)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_shows_the_state_airflow_would() {
        let group = Group { parts: vec![("success", 12), ("running", 5), ("failed", 1)], mapped: true };
        assert_eq!(group.state(), ("failed", 1));
        assert_eq!(group.total(), 18);
        assert_eq!(group.summary(), "1 failed, 5 running, 12 success");
        let group = Group { parts: vec![("success", 12), ("skipped", 8)], mapped: true };
        assert_eq!(group.state(), ("success", 12));
    }

    #[test]
    fn bad_numbers_in_the_query_are_refused_with_the_parameter_named() {
        assert_eq!(number_param("runs", None, 25, 1, 100).unwrap(), 25);
        assert_eq!(number_param("runs", Some("50"), 25, 1, 100).unwrap(), 50);
        for bad in ["0", "101", "x", "-3"] {
            let Err(UiError::BadRequest(detail)) = number_param("runs", Some(bad), 25, 1, 100) else {
                panic!("`{bad}` accepted");
            };
            assert!(detail.contains("`runs`"), "{detail}");
        }
    }
}
