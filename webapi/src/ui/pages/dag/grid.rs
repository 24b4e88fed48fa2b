//! The Grid tab, `/dags/{dag_id}`: the last runs × the DAG's tasks, each cell
//! a task instance (or a mapped task's instances) coloured by its state.

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use gust_shared::db::{
    dags::DagVersion,
    ui::grid::{self, GridRun},
};
use maud::{html, Markup};
use serde::Deserialize;

use super::{
    dag_and_latest, dag_header, is_live, number_param, query, run_or_404, state_label, Group, Tab, DEFAULT_RUNS,
    MAX_RUNS, POLL,
};
use crate::{
    ui::{
        api_call::{path, query_value},
        error::UiError,
        layout::{self, Nav},
        session::Session,
    },
    AppState,
};

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
