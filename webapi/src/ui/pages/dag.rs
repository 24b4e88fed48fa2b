//! `/dags/{dag_id}` and its tabs: the grid of the last runs × tasks, the graph
//! of a run's DAG version, the Gantt chart of a run, the run list, the DAG's
//! source per version, and its params. Trigger and backfill have their own
//! module; every tab shares [`dag_header`].

use std::collections::HashMap;

use axum::{
    extract::{Path, RawQuery, State},
    http::Method,
};
use chrono::{DateTime, Utc};
use gust_shared::{
    dag::Param,
    db::{
        self,
        dags::{DagRow, DagVersion},
        runs::{DagRunRow, RunFilter},
        task_instances::listing::TaskInstanceRow,
        ui::grid::{self, GridRun},
        GenericClient,
    },
    state::ALL_RUN_STATES,
};
use maud::{html, Markup};
use serde::{de::DeserializeOwned, Deserialize};

use crate::{
    ui::{
        api_call::{path, query_value},
        error::UiError,
        graph_layout::{self, NODE_HEIGHT},
        layout::{self, Nav},
        session::Session,
    },
    AppState,
};

/// Runs the grid shows unless `?runs=` says otherwise.
const DEFAULT_RUNS: i64 = 25;
/// Most runs the grid shows.
const MAX_RUNS: i64 = 100;
/// Runs a page of the run list shows unless `?limit=` says otherwise.
const RUNS_PAGE: i64 = 25;
/// The run types `?run_type=` accepts.
const RUN_TYPES: [&str; 3] = ["manual", "scheduled", "backfill"];
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
// Grid

/// The grid's query string.
#[derive(Deserialize, Default)]
pub(crate) struct GridQuery {
    runs: Option<String>,
    run_id: Option<String>,
    task_id: Option<String>,
    fragment: Option<String>,
}

/// `GET /dags/{dag_id}`: the grid of the last runs × the DAG's tasks.
pub(crate) async fn grid(
    State(state): State<AppState>,
    session: Session,
    Path(dag_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Markup, UiError> {
    let q: GridQuery = query(raw)?;
    let limit = number_param("runs", q.runs.as_deref(), DEFAULT_RUNS, 1, MAX_RUNS)?;
    let db = state.db().await?;
    let (dag, latest) = dag_and_latest(&db, &dag_id).await?;
    let mut runs = grid::runs(&db, &dag_id, limit).await?;
    runs.reverse();
    let run_id = q.run_id.as_deref().filter(|r| !r.is_empty());
    if let Some(run_id) = run_id {
        if !runs.iter().any(|r| r.run_id == run_id) {
            run_or_404(&db, &dag_id, run_id).await?;
        }
    }
    let run_pks: Vec<i64> = runs.iter().map(|r| r.id).collect();
    let cells = grid::cells(&db, &run_pks).await?;
    let selection = Selection { run_id, task_id: q.task_id.as_deref().filter(|t| !t.is_empty()) };
    let section = grid_section(&dag_id, &latest, &runs, &cells, limit, &selection);
    if q.fragment.as_deref() == Some("grid") {
        return Ok(section);
    }
    let content = html! {
        (dag_header(&session, &dag, latest.version_number, Some(Tab::Grid), run_id))
        form.inline-filters method="get" action=(path(&["dags", &dag_id])) {
            label { "Runs shown "
                select name="runs" {
                    @for n in [10, 25, 50, 100] { option value=(n) selected[n == limit] { (n) } }
                }
            }
            " " button.secondary type="submit" { "Show" }
        }
        (section)
    };
    Ok(layout::page(&session, &dag_id, Nav::Dags, content))
}

/// The cell (or run) the URL selected, outlined.
struct Selection<'a> {
    run_id: Option<&'a str>,
    task_id: Option<&'a str>,
}

/// The grid's section: its own fragment, polling while a shown run is live.
fn grid_section(
    dag_id: &str,
    latest: &DagVersion,
    runs: &[GridRun],
    cells: &[grid::GridCell],
    limit: i64,
    selection: &Selection<'_>,
) -> Markup {
    // Rows: the latest version's tasks in order, then tasks only older runs have.
    let mut tasks: Vec<&str> = latest.definition.tasks.iter().map(|t| t.task_id.as_str()).collect();
    let mut row_of: HashMap<&str, usize> = tasks.iter().enumerate().map(|(i, t)| (*t, i)).collect();
    let mut extra: Vec<&str> = cells.iter().map(|c| c.task_id.as_str()).filter(|t| !row_of.contains_key(t)).collect();
    extra.sort_unstable();
    extra.dedup();
    for task in extra {
        row_of.insert(task, tasks.len());
        tasks.push(task);
    }
    let col_of: HashMap<i64, usize> = runs.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
    let cols = runs.len();
    let mut matrix: Vec<Option<Group<'_>>> = Vec::new();
    matrix.resize_with(tasks.len() * cols, || None);
    for cell in cells {
        let (Some(&row), Some(&col)) = (row_of.get(cell.task_id.as_str()), col_of.get(&cell.run_pk)) else {
            continue;
        };
        let group = matrix[row * cols + col].get_or_insert_with(Group::default);
        group.parts.push((cell.state.as_str(), cell.count));
        group.mapped |= cell.mapped;
    }

    let base = path(&["dags", dag_id]);
    let run_prefix: Vec<String> =
        runs.iter().map(|r| format!("{base}/runs/{}/tasks/", path(&[&r.run_id]).trim_start_matches('/'))).collect();
    let task_segment: Vec<String> = tasks.iter().map(|t| path(&[t]).trim_start_matches('/').to_string()).collect();
    let live = runs.iter().any(|r| is_live(&r.state));
    let mut fragment = format!("{base}?fragment=grid&runs={limit}");
    for (name, value) in [("run_id", selection.run_id), ("task_id", selection.task_id)] {
        if let Some(value) = value {
            fragment.push_str(&format!("&{name}={}", query_value(value)));
        }
    }
    let selected_col = selection.run_id.and_then(|r| runs.iter().position(|run| run.run_id == r));
    let selected_row = selection.task_id.and_then(|t| row_of.get(t).copied());
    let mapped_size: Vec<i64> = (0..tasks.len())
        .map(|row| {
            matrix[row * cols..(row + 1) * cols]
                .iter()
                .flatten()
                .filter(|g| g.mapped)
                .map(Group::total)
                .max()
                .unwrap_or(-1)
        })
        .collect();

    html! {
        section #grid.grid-section hx-get=[live.then_some(&fragment)] hx-trigger=[live.then_some(POLL)] hx-swap=[live.then_some("outerHTML")] {
            @if runs.is_empty() {
                p.notice { "This DAG has no runs yet." }
            }
            @if let (Some(col), Some(row)) = (selected_col, selected_row) {
                p.selection {
                    "Selected: " strong { (tasks[row]) } " in run " strong { (runs[col].run_id) } " · "
                    a href={(run_prefix[col]) (task_segment[row])} { "open the task instance" }
                    " · " a href=(path(&["dags", dag_id, "runs", &runs[col].run_id])) { "open the run" }
                }
            }
            div.grid-wrap {
                table.grid {
                    caption.sr-only { "Task states of the last " (runs.len()) " runs of " (dag_id) ", oldest run first" }
                    thead {
                        tr {
                            th scope="col" { "Task" }
                            @for (col, run) in runs.iter().enumerate() {
                                th scope="col" {
                                    a.run.(layout::state_class(Some(&run.state))).selected[selected_col == Some(col)]
                                        href=(path(&["dags", dag_id, "runs", &run.run_id]))
                                        title={ (run.run_id) " · " (run.state) " · " (run.run_after.format("%Y-%m-%d %H:%M UTC")) } {
                                        span.sr-only { (run.run_id) ", " (run.state) }
                                    }
                                    span.run-date aria-hidden="true" { (run.run_after.format("%m-%d %H:%M")) }
                                }
                            }
                        }
                    }
                    tbody {
                        @for (row, task) in tasks.iter().enumerate() {
                            tr {
                                th scope="row" {
                                    (task)
                                    @if mapped_size[row] >= 0 { " " span.muted { "[" (mapped_size[row]) "]" } }
                                }
                                @for col in 0..cols {
                                    td {
                                        @if let Some(group) = &matrix[row * cols + col] {
                                            @let (state, count) = group.state();
                                            @let selected = selected_col == Some(col) && selected_row == Some(row);
                                            @if group.mapped {
                                                a.cell.(layout::state_class(Some(state))).selected[selected]
                                                    data-run=(runs[col].run_id) data-task=(task)
                                                    href={(run_prefix[col]) (task_segment[row])} title=(group.summary()) {
                                                    span.sr-only { (state_label(state)) }
                                                    span.count { (count) "/" (group.total()) " " (state_label(state)) }
                                                }
                                            } @else {
                                                a.cell.(layout::state_class(Some(state))).selected[selected]
                                                    data-run=(runs[col].run_id) data-task=(task)
                                                    href={(run_prefix[col]) (task_segment[row])} title=(state_label(state)) {
                                                    span.sr-only { (state_label(state)) }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
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
    let recent = grid::runs(db, dag_id, DEFAULT_RUNS).await?;
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

/// `GET /dags/{dag_id}/graph`: the DAG as the chosen run's version has it, coloured by that run's states.
pub(crate) async fn graph(
    State(state): State<AppState>,
    session: Session,
    Path(dag_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Markup, UiError> {
    let db = state.db().await?;
    let tab = RunTab::load(&db, &dag_id, raw, "graph").await?;
    let cells = match &tab.run {
        Some(run) => grid::cells(&db, &[run.id]).await?,
        None => Vec::new(),
    };
    let mut states: HashMap<&str, Group<'_>> = HashMap::new();
    for cell in &cells {
        let group = states.entry(cell.task_id.as_str()).or_default();
        group.parts.push((cell.state.as_str(), cell.count));
        group.mapped |= cell.mapped;
    }
    let intro = html! {
        p.muted {
            "Version v" (tab.version.version_number)
            @if let Some(run) = &tab.run { " as run " a href=(path(&["dags", &dag_id, "runs", &run.run_id])) { (run.run_id) } " used it" }
            @else { " (no runs yet)" }
        }
    };
    let body = graph_svg(&dag_id, &tab.version, tab.run.as_ref(), &states);
    Ok(tab.render(&session, Tab::Graph, "graph", intro, body))
}

/// The SVG of a DAG version, laid out by [`graph_layout`], each node coloured by its state in `run`.
fn graph_svg(dag_id: &str, version: &DagVersion, run: Option<&GridRun>, states: &HashMap<&str, Group<'_>>) -> Markup {
    let tasks = &version.definition.tasks;
    let labels: Vec<&str> = tasks.iter().map(|t| t.task_id.as_str()).collect();
    let index: HashMap<&str, usize> = labels.iter().enumerate().map(|(i, t)| (*t, i)).collect();
    let edges: Vec<(usize, usize)> = tasks
        .iter()
        .enumerate()
        .flat_map(|(i, t)| t.upstream.iter().filter_map(|u| index.get(u.as_str())).map(move |&u| (u, i)))
        .collect();
    let layout = graph_layout::layout(&labels, &edges);
    let text_dy = NODE_HEIGHT / 2.0 + 4.0;
    html! {
        div.graph-wrap {
            svg.graph xmlns="http://www.w3.org/2000/svg" role="img"
                width=(format!("{:.0}", layout.width)) height=(format!("{:.0}", layout.height))
                viewBox=(format!("0 0 {:.0} {:.0}", layout.width, layout.height)) {
                title { "Tasks of " (dag_id) " and their dependencies" }
                @for edge in &layout.edges {
                    path.edge d=(edge.d) data-from=(labels[edge.from]) data-to=(labels[edge.to]) {}
                }
                @for (i, node) in layout.nodes.iter().enumerate() {
                    @let group = states.get(labels[i]);
                    @let state = group.map(|g| g.state().0);
                    @let tip = match group {
                        Some(g) => format!("{}: {}", labels[i], g.summary()),
                        None => labels[i].to_string(),
                    };
                    @if let Some(run) = run {
                        a.node.(layout::state_class(state))
                            href=(path(&["dags", dag_id, "runs", &run.run_id, "tasks", labels[i]])) data-task=(labels[i]) {
                            title { (tip) }
                            rect x=(format!("{:.1}", node.x)) y=(format!("{:.1}", node.y)) width=(format!("{:.1}", node.width)) height=(NODE_HEIGHT) rx="4" {}
                            text x=(format!("{:.1}", node.x + 10.0)) y=(format!("{:.1}", node.y + text_dy)) { (node.label) }
                        }
                    } @else {
                        g.node.s-none data-task=(labels[i]) {
                            title { (tip) }
                            rect x=(format!("{:.1}", node.x)) y=(format!("{:.1}", node.y)) width=(format!("{:.1}", node.width)) height=(NODE_HEIGHT) rx="4" {}
                            text x=(format!("{:.1}", node.x + 10.0)) y=(format!("{:.1}", node.y + text_dy)) { (node.label) }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /dags/{dag_id}/gantt`: one run's task instances on a time line; running tries end at now.
pub(crate) async fn gantt(
    State(state): State<AppState>,
    session: Session,
    Path(dag_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Markup, UiError> {
    let db = state.db().await?;
    let tab = RunTab::load(&db, &dag_id, raw, "gantt").await?;
    let body = match &tab.run {
        None => html! { p.notice { "This DAG has no runs yet." } },
        Some(run) => {
            let mut tis = db::task_instances::listing::list_for_run(&db, run.id).await?;
            let order: HashMap<&str, usize> =
                tab.version.definition.tasks.iter().enumerate().map(|(i, t)| (t.task_id.as_str(), i)).collect();
            tis.sort_by(|a, b| {
                let key = |t: &TaskInstanceRow| order.get(t.task_id.as_str()).copied().unwrap_or(usize::MAX);
                key(a).cmp(&key(b)).then_with(|| a.task_id.cmp(&b.task_id)).then(a.map_index.cmp(&b.map_index))
            });
            gantt_svg(&dag_id, run, &tis, Utc::now())
        }
    };
    Ok(tab.render(&session, Tab::Gantt, "gantt", html! {}, body))
}

/// Gantt geometry: label column, chart width, row height, axis height.
const GANTT_CHART_WIDTH: f64 = 800.0;
const GANTT_ROW: f64 = 22.0;
const GANTT_AXIS: f64 = 30.0;
const GANTT_LABEL_CHARS: usize = 48;

/// Tick spacings the time axis chooses from, in seconds.
const TICK_STEPS: [i64; 18] =
    [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

/// The tick spacing that puts at most eight ticks on `span_seconds`.
fn tick_step(span_seconds: f64) -> i64 {
    TICK_STEPS.iter().copied().find(|step| span_seconds / *step as f64 <= 8.0).unwrap_or_else(|| {
        let days = (span_seconds / 86_400.0 / 8.0).ceil().max(1.0) as i64;
        days * 86_400
    })
}

/// The SVG Gantt chart of one run's task instances at `now`.
fn gantt_svg(dag_id: &str, run: &GridRun, tis: &[TaskInstanceRow], now: DateTime<Utc>) -> Markup {
    if tis.is_empty() {
        return html! { p.notice { "This run has no task instances yet; they appear when the scheduler starts it." } };
    }
    let label = |ti: &TaskInstanceRow| {
        if ti.map_index >= 0 {
            format!("{} [{}]", ti.task_id, ti.map_index)
        } else {
            ti.task_id.clone()
        }
    };
    let labels: Vec<String> = tis.iter().map(label).collect();
    let label_width =
        labels.iter().map(|l| l.chars().count()).max().unwrap_or(0).min(GANTT_LABEL_CHARS) as f64 * 7.0 + 16.0;
    let chart_x = label_width + 8.0;
    // A try still going ends at `now`, as does a queued wait.
    let end_of = |ti: &TaskInstanceRow| {
        ti.end_date.or_else(|| (ti.start_date.is_some() || ti.queued_at.is_some()).then_some(now))
    };
    let begins = tis.iter().flat_map(|t| [t.queued_at, t.start_date]).flatten().chain(run.start_date);
    let Some(t0) = begins.min() else {
        return html! {
            p.notice { "No task of this run has been queued yet." }
            ul.plain { @for l in &labels { li { (l) } } }
        };
    };
    let t1 = tis.iter().filter_map(end_of).chain(run.end_date).max().unwrap_or(now).max(t0);
    let span = ((t1 - t0).num_milliseconds() as f64 / 1000.0).max(1.0);
    let scale = GANTT_CHART_WIDTH / span;
    let x_of = |at: DateTime<Utc>| chart_x + ((at - t0).num_milliseconds() as f64 / 1000.0).max(0.0) * scale;
    let step = tick_step(span);
    let first_tick = (t0.timestamp() + step - 1).div_euclid(step) * step;
    let tick_format = if span > 86_400.0 {
        "%m-%d %H:%M"
    } else if step >= 60 {
        "%H:%M"
    } else {
        "%H:%M:%S"
    };
    let ticks: Vec<DateTime<Utc>> = (0..)
        .map(|i| first_tick + i * step)
        .take_while(|t| *t as f64 <= t1.timestamp() as f64)
        .filter_map(|t| DateTime::from_timestamp(t, 0))
        // The first whole second may lie before a t0 with a fraction; its label would overlap the next.
        .filter(|t| *t >= t0)
        .collect();
    let width = chart_x + GANTT_CHART_WIDTH + 40.0;
    let height = GANTT_AXIS + GANTT_ROW * tis.len() as f64 + 10.0;
    let f = |v: f64| format!("{v:.1}");
    html! {
        p.muted { "Times in UTC from " (layout::time(Some(t0))) "; running tries end at now." }
        div.gantt-wrap {
            svg.gantt xmlns="http://www.w3.org/2000/svg" role="img" width=(f(width)) height=(f(height))
                viewBox=(format!("0 0 {width:.1} {height:.1}")) {
                title { "Gantt chart of run " (run.run_id) }
                @for tick in &ticks {
                    line.axis x1=(f(x_of(*tick))) x2=(f(x_of(*tick))) y1=(f(GANTT_AXIS - 6.0)) y2=(f(height)) {}
                    text.tick x=(f(x_of(*tick) + 2.0)) y=(f(GANTT_AXIS - 10.0)) { (tick.format(tick_format)) }
                }
                @for (i, ti) in tis.iter().enumerate() {
                    @let y = GANTT_AXIS + GANTT_ROW * i as f64;
                    @let state = ti.state.as_str();
                    g.row data-task=(ti.task_id) data-map-index=(ti.map_index) data-state=(state) {
                        a href=(path(&["dags", dag_id, "runs", &run.run_id, "tasks", &ti.task_id])) {
                            title { (labels[i]) }
                            text x="4" y=(f(y + 15.0)) { (graph_layout::short_label(&labels[i], GANTT_LABEL_CHARS)) }
                        }
                        @if let (Some(queued), Some(end)) = (ti.queued_at, ti.start_date.or_else(|| end_of(ti))) {
                            @if end > queued {
                                rect.queued-part x=(f(x_of(queued))) y=(f(y + 4.0)) width=(f((x_of(end) - x_of(queued)).max(1.0))) height=(f(GANTT_ROW - 8.0)) {
                                    title { (labels[i]) " queued " (queued.format("%H:%M:%S")) }
                                }
                            }
                        }
                        @if let (Some(start), Some(end)) = (ti.start_date, end_of(ti)) {
                            rect.bar.(layout::state_class(Some(state))) x=(f(x_of(start))) y=(f(y + 3.0))
                                width=(f((x_of(end) - x_of(start)).max(2.0))) height=(f(GANTT_ROW - 6.0)) rx="2" {
                                title {
                                    (labels[i]) ": " (state) ", " (start.format("%H:%M:%S")) " – "
                                    @if ti.end_date.is_some() { (end.format("%H:%M:%S")) } @else { "now" }
                                    " (" (layout::duration(layout::seconds_between(Some(start), ti.end_date))) ")"
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Runs

/// The run list's query string.
#[derive(Deserialize, Default)]
pub(crate) struct RunsQuery {
    state: Option<String>,
    run_type: Option<String>,
    offset: Option<String>,
    limit: Option<String>,
}

/// `GET /dags/{dag_id}/runs`: the DAG's runs, newest first, filtered by state and type.
pub(crate) async fn runs(
    State(state): State<AppState>,
    session: Session,
    Path(dag_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Markup, UiError> {
    let q: RunsQuery = query(raw)?;
    let offset = number_param("offset", q.offset.as_deref(), 0, 0, i64::MAX / 2)?;
    let limit = number_param("limit", q.limit.as_deref(), RUNS_PAGE, 1, MAX_RUNS)?;
    let run_state = q.state.as_deref().unwrap_or("");
    if !run_state.is_empty() && !ALL_RUN_STATES.iter().any(|s| s.as_str() == run_state) {
        return Err(UiError::BadRequest(format!(
            "`state` must be one of queued, running, success, failed, not `{run_state}`"
        )));
    }
    let run_type = q.run_type.as_deref().unwrap_or("");
    if !run_type.is_empty() && !RUN_TYPES.contains(&run_type) {
        return Err(UiError::BadRequest(format!(
            "`run_type` must be one of manual, scheduled, backfill, not `{run_type}`"
        )));
    }
    let db = state.db().await?;
    let (dag, latest) = dag_and_latest(&db, &dag_id).await?;
    let filter = RunFilter {
        dag_id: Some(dag_id.clone()),
        states: if run_state.is_empty() { Vec::new() } else { vec![run_state.to_string()] },
        run_types: if run_type.is_empty() { Vec::new() } else { vec![run_type.to_string()] },
        ..RunFilter::default()
    };
    let (rows, total) = db::runs::list_filtered(&db, &filter, "run_after DESC, id DESC", limit, offset).await?;
    let base = path(&["dags", &dag_id]);
    let link = |offset: i64| {
        format!(
            "{base}/runs?state={}&run_type={}&limit={limit}&offset={offset}",
            query_value(run_state),
            query_value(run_type)
        )
    };
    let content = html! {
        (dag_header(&session, &dag, latest.version_number, Some(Tab::Runs), None))
        form.inline-filters method="get" action={(base) "/runs"} {
            label { "State "
                select name="state" {
                    option value="" { "any" }
                    @for s in ALL_RUN_STATES { option value=(s.as_str()) selected[s.as_str() == run_state] { (s.as_str()) } }
                }
            }
            " "
            label { "Type "
                select name="run_type" {
                    option value="" { "any" }
                    @for t in RUN_TYPES { option value=(t) selected[t == run_type] { (t) } }
                }
            }
            input type="hidden" name="limit" value=(limit);
            " " button.secondary type="submit" { "Filter" }
        }
        @if rows.is_empty() {
            p.notice { "No run matches." }
        } @else {
            table.runs {
                thead { tr {
                    th scope="col" { "Run" } th scope="col" { "State" } th scope="col" { "Type" }
                    th scope="col" { "Logical date" } th scope="col" { "Run after" } th scope="col" { "Started" }
                    th scope="col" { "Ended" } th scope="col" { "Duration" } th scope="col" { "Note" }
                } }
                tbody {
                    @for run in &rows {
                        tr {
                            td { a.run-link href=(path(&["dags", &dag_id, "runs", &run.run_id])) { (run.run_id) } }
                            td { (layout::state_badge(Some(run.state.as_str()))) }
                            td { (run.run_type) }
                            td { (layout::time(run.logical_date)) }
                            td { (layout::time(Some(run.run_after))) }
                            td { (layout::time(run.start_date)) }
                            td { (layout::time(run.end_date)) }
                            td { (layout::duration(layout::seconds_between(run.start_date, run.end_date))) }
                            td { @if let Some(note) = &run.note { (note) } }
                        }
                    }
                }
            }
        }
        (layout::pager(total, limit, offset, link))
    };
    Ok(layout::page(&session, &format!("{dag_id} · runs"), Nav::Dags, content))
}

// ---------------------------------------------------------------------------
// Code

/// The code tab's query string.
#[derive(Deserialize, Default)]
pub(crate) struct CodeQuery {
    version: Option<String>,
    run_id: Option<String>,
}

/// `GET /dags/{dag_id}/code`: the YAML a version was parsed from (`?version=N`,
/// or the version run `?run_id=` used; the latest by default), and every version.
pub(crate) async fn code(
    State(state): State<AppState>,
    session: Session,
    Path(dag_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Markup, UiError> {
    let q: CodeQuery = query(raw)?;
    let db = state.db().await?;
    let (dag, latest) = dag_and_latest(&db, &dag_id).await?;
    let versions = db::dags::versions(&db, &dag_id).await?;
    let run = match q.run_id.as_deref().filter(|r| !r.is_empty()) {
        Some(run_id) => Some(run_or_404(&db, &dag_id, run_id).await?),
        None => None,
    };
    let wanted = number_param("version", q.version.as_deref(), -1, 1, i64::from(i32::MAX))?;
    let chosen_id = if wanted > 0 {
        versions.iter().find(|v| i64::from(v.version_number) == wanted).map(|v| v.id).ok_or_else(|| {
            UiError::NotFound(format!("DAG `{dag_id}` has no version {wanted}; the list below has them all"))
        })?
    } else if let Some(run) = &run {
        run.dag_version_id
    } else {
        latest.id
    };
    let version = if chosen_id == latest.id {
        latest.clone()
    } else {
        db::dags::version(&db, chosen_id)
            .await?
            .ok_or_else(|| UiError::NotFound(format!("DAG `{dag_id}` has no version with id {chosen_id}")))?
    };
    let source = db::dags::source(&db, version.id).await?.flatten();
    let base = path(&["dags", &dag_id]);
    let content = html! {
        (dag_header(&session, &dag, latest.version_number, Some(Tab::Code), run.as_ref().map(|r| r.run_id.as_str())))
        h2 {
            "Version v" (version.version_number)
            @if version.id == latest.id { " (latest)" }
            @if let Some(run) = &run { @if run.dag_version_id == version.id { " · used by run " (run.run_id) } }
        }
        p.muted { "Stored " (layout::time(Some(version.created_at))) " from " code { (dag.fileloc) } }
        @match &source {
            Some(text) => {
                pre.source #source {
                    code { @for line in text.lines() { span.ln { (line) "\n" } } }
                }
            }
            None => {
                p.notice #no-source {
                    "Version v" (version.version_number) " was stored before gust kept DAG sources, so its YAML text is not available; "
                    "re-parse the file (restart a scheduler, or change the file) to store the source of the current version. "
                    "The definition gust parsed from it follows."
                }
                (layout::json_block(&serde_json::to_value(&version.definition).unwrap_or_default()))
            }
        }
        h2 { "Versions" }
        table.versions {
            thead { tr { th scope="col" { "Version" } th scope="col" { "Stored" } th scope="col" { "Source" } } }
            tbody {
                @for v in &versions {
                    tr {
                        td {
                            a href={(base) "/code?version=" (v.version_number)} aria-current=[(v.id == version.id).then_some("page")] {
                                "v" (v.version_number)
                            }
                            @if v.id == latest.id { " " span.muted { "latest" } }
                        }
                        td { (layout::time(Some(v.created_at))) }
                        td { @if v.has_source { "kept" } @else { span.muted { "not kept (stored before gust kept sources)" } } }
                    }
                }
            }
        }
    };
    Ok(layout::page(&session, &format!("{dag_id} · code"), Nav::Dags, content))
}

// ---------------------------------------------------------------------------
// Params

/// `GET /dags/{dag_id}/params`: the latest version's params with their types, defaults and bounds.
pub(crate) async fn params(
    State(state): State<AppState>,
    session: Session,
    Path(dag_id): Path<String>,
) -> Result<Markup, UiError> {
    let db = state.db().await?;
    let (dag, latest) = dag_and_latest(&db, &dag_id).await?;
    let params = &latest.definition.params;
    let content = html! {
        (dag_header(&session, &dag, latest.version_number, Some(Tab::Params), None))
        @if params.is_empty() {
            p.notice { "This DAG declares no params." }
        } @else {
            table.params {
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "Type" } th scope="col" { "Default" }
                    th scope="col" { "Allowed values" } th scope="col" { "Minimum" } th scope="col" { "Maximum" }
                    th scope="col" { "Title" } th scope="col" { "Description" }
                } }
                tbody {
                    @for (name, param) in params.iter() {
                        (param_row(name, param))
                    }
                }
            }
        }
    };
    Ok(layout::page(&session, &format!("{dag_id} · params"), Nav::Dags, content))
}

fn param_row(name: &str, param: &Param) -> Markup {
    let types: Vec<&str> = param.types.iter().map(|t| t.name()).collect();
    html! {
        tr data-param=(name) {
            th scope="row" { code { (name) } }
            td.type { @if types.is_empty() { span.muted { "any" } } @else { (types.join(" or ")) } }
            td.default {
                @match param.effective_default() {
                    Some(value) => code { (value.to_string()) },
                    None => span.badge.s-failed { "required" },
                }
            }
            td.enum {
                @if let Some(allowed) = &param.allowed {
                    @for (i, value) in allowed.iter().enumerate() { @if i > 0 { ", " } code { (value.to_string()) } }
                }
            }
            td.minimum { @if let Some(min) = &param.minimum { (min.to_string()) } }
            td.maximum { @if let Some(max) = &param.maximum { (max.to_string()) } }
            td.title { @if let Some(title) = &param.title { (title) } }
            td.description { @if let Some(description) = &param.description { (description) } }
        }
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
    fn the_time_axis_has_a_handful_of_ticks() {
        assert_eq!(tick_step(5.0), 1);
        assert_eq!(tick_step(100.0), 15);
        assert_eq!(tick_step(3600.0), 600);
        assert_eq!(tick_step(30.0 * 86_400.0), 4 * 86_400);
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
