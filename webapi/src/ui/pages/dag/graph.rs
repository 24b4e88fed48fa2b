//! The Graph tab, `/dags/{dag_id}/graph`: the DAG as a run's version has it,
//! laid out as SVG and coloured by that run's states.

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use gust_shared::db::{
    dags::DagVersion,
    ui::grid::{self, GridRun},
};
use maud::{html, Markup};

use super::{Group, RunTab, Tab};
use crate::{
    ui::{
        api_call::path,
        error::UiError,
        graph_layout::{self, NODE_HEIGHT},
        layout,
        session::Session,
    },
    AppState,
};

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
