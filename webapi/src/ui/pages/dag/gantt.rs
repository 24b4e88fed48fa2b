//! The Gantt tab, `/dags/{dag_id}/gantt`: one run's task instances on a time
//! line as SVG, with the time axis and its ticks.

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use chrono::{DateTime, Utc};
use gust_shared::db::{self, task_instances::listing::TaskInstanceRow, ui::grid::GridRun};
use maud::{html, Markup};

use super::{RunTab, Tab};
use crate::{
    ui::{api_call::path, error::UiError, graph_layout, layout, session::Session},
    AppState,
};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_axis_has_a_handful_of_ticks() {
        assert_eq!(tick_step(5.0), 1);
        assert_eq!(tick_step(100.0), 15);
        assert_eq!(tick_step(3600.0), 600);
        assert_eq!(tick_step(30.0 * 86_400.0), 4 * 86_400);
    }
}
