//! UI: how long the webapi takes to render the pages people wait on most in
//! Airflow. A 1,000-task DAG gets 25 finished runs inserted with SQL (mixed
//! states, one run still running), and one try gets a 10,000-line log; then
//! the grid, that task's page (the first page of its log) and the raw log
//! download are fetched over loopback, timed from request to last byte, and
//! their sizes reported as sent plain and gzip-compressed.

use std::time::Instant;

use anyhow::Context;

use super::{m, Ctx, Measurement, ScenarioOutcome};
use crate::{
    dags::{self, Op},
    stack::GustStack,
    stats::median,
};

/// The DAG whose grid is rendered.
const DAG: &str = "bench_ui_grid";
/// Tasks in the DAG (rows of the grid).
const TASKS: usize = 1_000;
/// Runs inserted (columns of the grid).
const RUNS: i64 = 25;
/// Lines of the big log.
const LOG_LINES: i64 = 10_000;
/// Timed fetches of each page per repetition; the median counts.
const SAMPLES: usize = 20;

/// Renders the grid and the log pages `ctx.repeat` times over.
pub async fn run(ctx: &Ctx) -> ScenarioOutcome {
    let files = vec![(format!("{DAG}.yaml"), dags::fanout(DAG, TASKS, Op::Noop))];
    eprintln!(
        "[ui] grid of {RUNS} runs × {TASKS} tasks and a {LOG_LINES}-line log, {SAMPLES} fetches each ×{}",
        ctx.repeat
    );
    let result = GustStack::with(ctx, &files, async |stack| measure(ctx, stack).await).await;
    let repetitions = match result {
        Ok(repetitions) => repetitions.into_iter().map(Ok).collect(),
        Err(e) => {
            eprintln!("[ui]   FAILED: {e:#}");
            vec![Err(format!("{e:#}"))]
        }
    };
    ScenarioOutcome::from_repetitions("ui", repetitions)
        .note(format!(
            "time from request to last byte over loopback, median of {SAMPLES} fetches with the admin's bearer token; \
             the grid is GET /dags/{DAG} ({RUNS} runs × {TASKS} tasks), the log page is the task page of a try with \
             {LOG_LINES} log lines (it shows the first page and loads the rest on demand), log.txt is the whole raw log"
        ))
        .note("sizes: bytes on the wire without compression, and with Accept-Encoding: gzip (what a browser gets)")
}

async fn measure(ctx: &Ctx, stack: &mut GustStack) -> anyhow::Result<Vec<Vec<Measurement>>> {
    stack.wait_for_dag(DAG).await?;
    let (run_id, task_id) = insert_history(stack).await?;
    let run = encode(&run_id);
    let pages = [
        ("grid", format!("/dags/{DAG}")),
        ("log_page", format!("/dags/{DAG}/runs/{run}/tasks/{task_id}?try=1")),
        ("log_txt", format!("/dags/{DAG}/runs/{run}/tasks/{task_id}/log.txt?try=1")),
    ];
    let mut repetitions = Vec::new();
    for i in 0..ctx.repeat {
        let mut measurements = Vec::new();
        for (name, path) in &pages {
            let url = format!("{}{path}", stack.api);
            let (plain_bytes, gzip_bytes) = sizes(stack, &url).await.with_context(|| format!("fetching {path}"))?;
            let mut samples = Vec::with_capacity(SAMPLES);
            for _ in 0..SAMPLES {
                let started = Instant::now();
                let response = stack.http.get(&url).send().await?.error_for_status()?;
                response.bytes().await?;
                samples.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            let p50 = median(&samples).unwrap_or(f64::NAN);
            eprintln!("[ui]   repetition {}: {name} p50 {p50:.1} ms, {plain_bytes} bytes ({gzip_bytes} gzip)", i + 1);
            measurements.push(m(&format!("{name}_ms"), &format!("{name}: render + transfer p50"), "ms", p50));
            measurements.push(m(&format!("{name}_bytes"), &format!("{name}: bytes"), "B", plain_bytes as f64));
            measurements.push(m(&format!("{name}_gzip_bytes"), &format!("{name}: bytes gzip"), "B", gzip_bytes as f64));
        }
        repetitions.push(measurements);
    }
    Ok(repetitions)
}

/// Bytes of one answer sent plain and sent gzip-compressed.
async fn sizes(stack: &GustStack, url: &str) -> anyhow::Result<(usize, usize)> {
    let plain = stack.http.get(url).send().await?.error_for_status()?.bytes().await?.len();
    let gzip = stack
        .http
        .get(url)
        .header(reqwest::header::ACCEPT_ENCODING, "gzip")
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?
        .len();
    Ok((plain, gzip))
}

/// Inserts the runs and their task instances (the last run still running) and
/// the big log; returns the run and task whose try has the log.
async fn insert_history(stack: &GustStack) -> anyhow::Result<(String, String)> {
    let version: i64 = stack
        .db
        .query_one("SELECT latest_version_id FROM dags WHERE dag_id = $1", &[&DAG])
        .await
        .context("reading the DAG's version")?
        .try_get(0)
        .context("the DAG has no version")?;
    stack
        .db
        .execute(
            "INSERT INTO dag_runs (dag_id, run_id, run_type, state, dag_version_id, run_after, queued_at, start_date, end_date, triggered_by) \
             SELECT $1, 'ui__' || lpad(g::text, 3, '0'), 'manual', CASE WHEN g = $3 THEN 'running' WHEN g % 5 = 0 THEN 'failed' ELSE 'success' END, \
                 $2, t, t, t + interval '1 second', CASE WHEN g = $3 THEN NULL ELSE t + interval '1 minute' END, 'rest_api' \
             FROM generate_series(1, $3::bigint) g, LATERAL (SELECT now() - interval '1 day' + g * interval '10 minutes' AS t) times",
            &[&DAG, &version, &RUNS],
        )
        .await
        .context("inserting runs")?;
    let last_task = i32::try_from(TASKS - 1)?;
    stack
        .db
        .execute(
            "INSERT INTO task_instances (run_pk, dag_id, run_id, task_id, operator, queue, state, try_number, max_tries, \
                 hostname, queued_at, start_date, end_date, updated_at) \
             SELECT r.id, r.dag_id, r.run_id, 't' || lpad(i::text, 3, '0'), 'noop', 'default', \
                 CASE WHEN r.state = 'running' AND i % 3 = 0 THEN 'running' WHEN r.state = 'running' THEN 'queued' \
                      WHEN r.state = 'failed' AND i % 97 = 0 THEN 'failed' \
                      WHEN r.state = 'failed' AND i % 97 = 1 THEN 'upstream_failed' ELSE 'success' END, \
                 1, 0, 'bench-ui', r.start_date, r.start_date, r.end_date, coalesce(r.end_date, now()) \
             FROM dag_runs r CROSS JOIN generate_series(0, $2::int) i WHERE r.dag_id = $1",
            &[&DAG, &last_task],
        )
        .await
        .context("inserting task instances")?;
    let run_id = "ui__001".to_string();
    let task_id = dags::task_id(0, TASKS);
    stack
        .db
        .execute(
            "INSERT INTO task_logs (ti_id, try_number, ts, stream, line) \
             SELECT ti.id, 1, now(), CASE WHEN g % 10 = 0 THEN 'stderr' ELSE 'stdout' END, \
                 'line ' || g || ': processed batch ' || (g * 7919 % 100000) || ' of the nightly load, 512 rows, 0 rejected' \
             FROM task_instances ti CROSS JOIN generate_series(1, $4::bigint) g \
             WHERE ti.dag_id = $1 AND ti.run_id = $2 AND ti.task_id = $3",
            &[&DAG, &run_id, &task_id, &LOG_LINES],
        )
        .await
        .context("inserting the log")?;
    stack.db.batch_execute("VACUUM ANALYZE").await.context("VACUUM ANALYZE")?;
    Ok((run_id, task_id))
}

/// A path segment with the few characters run ids may hold that URLs reserve encoded.
fn encode(segment: &str) -> String {
    segment.replace('%', "%25").replace('+', "%2B").replace('/', "%2F")
}
