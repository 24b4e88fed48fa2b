//! API load: [`CLIENTS`] concurrent HTTP clients send GETs to the list
//! endpoints for 30 s (`--load-seconds`), each client cycling through
//! [`ENDPOINTS`] without pause. Before, [`RUNS`] finished runs × [`TASKS`] task
//! instances are inserted with SQL next to [`DAG_FILES`] DAGs, so every page is
//! full and every total is counted over thousands of rows. Measures
//! requests/s, p50/p99 latency per endpoint and overall, and the count of 5xx
//! answers, which must be 0. Not part of `all`.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;

use super::{m, repeat, Ctx, Measurement, ScenarioOutcome};
use crate::{
    dags::{self, Op},
    stack::{self, GustStack},
    stats::percentile,
};

/// Concurrent clients.
const CLIENTS: usize = 64;
/// DAG files in the folder (more than one page of `GET /dags`).
const DAG_FILES: usize = 60;
/// Finished runs inserted for the first DAG.
const RUNS: i64 = 2_000;
/// Task instances per inserted run.
const TASKS: usize = 5;
/// Longest one request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The endpoints under load: the list's field in the answer (also the metrics' name) and the path, default page size.
const ENDPOINTS: [(&str, &str); 3] = [
    ("dags", "/api/v2/dags"),
    ("dag_runs", "/api/v2/dags/bench_apiload_t000/dagRuns"),
    ("task_instances", "/api/v2/dags/~/dagRuns/~/taskInstances"),
];

/// Loads the list endpoints `ctx.repeat` times.
pub async fn run(ctx: &Ctx) -> ScenarioOutcome {
    let files: Vec<(String, String)> = (0..DAG_FILES)
        .map(|i| {
            let dag_id = format!("bench_apiload_{}", dags::task_id(i, DAG_FILES));
            (format!("{dag_id}.yaml"), dags::chain(&dag_id, TASKS, Op::Noop))
        })
        .collect();
    let seconds = ctx.load_seconds;
    repeat(ctx, "apiload", async |_| {
        GustStack::with(ctx, &files, async |stack| {
            insert_rows(stack).await?;
            let totals = row_totals(stack).await?;
            let mut out = load(stack, Duration::from_secs(seconds)).await?;
            out.extend(totals);
            Ok(out)
        })
        .await
    })
    .await
    .note(format!(
        "{CLIENTS} clients for {seconds} s, each cycling GET {} (default page of 50, the admin's bearer token) without pause; \
         {DAG_FILES} DAGs, {RUNS} finished runs × {TASKS} task instances; errors_5xx must be 0",
        ENDPOINTS.map(|(_, path)| path).join(", ")
    ))
}

/// Inserts [`RUNS`] finished runs of the first DAG with [`TASKS`] task instances each.
async fn insert_rows(stack: &mut GustStack) -> anyhow::Result<()> {
    let dag_id = format!("bench_apiload_{}", dags::task_id(0, DAG_FILES));
    for i in (0..DAG_FILES).rev() {
        stack.wait_for_dag(&format!("bench_apiload_{}", dags::task_id(i, DAG_FILES))).await?;
    }
    let version: i64 = stack
        .db
        .query_one("SELECT latest_version_id FROM dags WHERE dag_id = $1", &[&dag_id])
        .await?
        .try_get(0)
        .context("the DAG has no version")?;
    stack
        .db
        .execute(
            "INSERT INTO dag_runs (dag_id, run_id, run_type, state, dag_version_id, run_after, queued_at, start_date, end_date, triggered_by) \
             SELECT $1, 'load__' || lpad(g::text, 5, '0'), 'manual', CASE WHEN g % 10 = 0 THEN 'failed' ELSE 'success' END, \
                 $2, t, t, t + interval '1 second', t + interval '1 minute', 'rest_api' \
             FROM generate_series(1, $3::bigint) g, LATERAL (SELECT now() - interval '30 days' + g * interval '10 minutes' AS t) times",
            &[&dag_id, &version, &RUNS],
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
                 CASE WHEN r.state = 'failed' AND i = $2 THEN 'failed' ELSE 'success' END, 1, 0, 'bench-apiload', \
                 r.start_date, r.start_date, r.end_date, r.end_date \
             FROM dag_runs r CROSS JOIN generate_series(0, $2::int) i WHERE r.dag_id = $1",
            &[&dag_id, &last_task],
        )
        .await
        .context("inserting task instances")?;
    stack.db.batch_execute("VACUUM ANALYZE").await.context("VACUUM ANALYZE")?;
    Ok(())
}

/// Fetches every endpoint once; fails unless each answers a non-empty list; returns their `total_entries`.
async fn row_totals(stack: &GustStack) -> anyhow::Result<Vec<Measurement>> {
    let mut out = Vec::new();
    for (name, path) in ENDPOINTS {
        let response = stack.http.get(format!("{}{path}", stack.api)).send().await?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let listed = body[name].as_array().map_or(0, Vec::len);
        let total = body["total_entries"].as_i64().unwrap_or(0);
        if !status.is_success() || listed == 0 {
            anyhow::bail!(
                "GET {path} answered {status} with {listed} {name} before the load; the load would measure empty pages"
            );
        }
        out.push(m(&format!("{name}_rows"), &format!("GET {path}: total_entries"), "", total as f64));
    }
    Ok(out)
}

/// What one client saw: latencies per endpoint, 5xx answers, other failures.
#[derive(Debug, Default)]
struct Seen {
    latencies_ms: [Vec<f64>; ENDPOINTS.len()],
    server_errors: usize,
    other_errors: usize,
    first_error: Option<String>,
}

impl Seen {
    fn merge(&mut self, other: Seen) {
        for (mine, theirs) in self.latencies_ms.iter_mut().zip(other.latencies_ms) {
            mine.extend(theirs);
        }
        self.server_errors += other.server_errors;
        self.other_errors += other.other_errors;
        self.first_error = self.first_error.take().or(other.first_error);
    }
}

/// Runs the clients for `duration` and summarises what they saw.
async fn load(stack: &GustStack, duration: Duration) -> anyhow::Result<Vec<Measurement>> {
    let api: Arc<str> = stack.api.clone().into();
    let started = Instant::now();
    let until = started + duration;
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..CLIENTS {
        let (api, token) = (api.clone(), stack.token.clone());
        clients.spawn(async move {
            let http = stack::authed_client(&token)?;
            let mut seen = Seen::default();
            let mut next = client % ENDPOINTS.len();
            while Instant::now() < until {
                let (name, path) = ENDPOINTS[next];
                let sent = Instant::now();
                let answer = tokio::time::timeout(REQUEST_TIMEOUT, async {
                    let response = http.get(format!("{api}{path}")).send().await?;
                    let status = response.status();
                    response.bytes().await.map(|_| status)
                })
                .await;
                match answer {
                    Ok(Ok(status)) if status.is_success() => {
                        seen.latencies_ms[next].push(sent.elapsed().as_secs_f64() * 1000.0);
                    }
                    Ok(Ok(status)) if status.is_server_error() => {
                        seen.server_errors += 1;
                        seen.first_error.get_or_insert_with(|| format!("GET {path}: HTTP {status}"));
                    }
                    failed => {
                        seen.other_errors += 1;
                        let reason = match failed {
                            Ok(Ok(status)) => format!("HTTP {status}"),
                            Ok(Err(e)) => e.to_string(),
                            Err(_) => format!("no answer within {REQUEST_TIMEOUT:?}"),
                        };
                        seen.first_error.get_or_insert_with(|| format!("GET {path} ({name}): {reason}"));
                    }
                }
                next = (next + 1) % ENDPOINTS.len();
            }
            anyhow::Ok(seen)
        });
    }
    let mut seen = Seen::default();
    while let Some(joined) = clients.join_next().await {
        seen.merge(joined.context("an HTTP client task panicked")??);
    }
    let wall_s = started.elapsed().as_secs_f64();
    if let Some(error) = &seen.first_error {
        eprintln!(
            "[apiload]   {} 5xx and {} other failed requests; the first: {error}",
            seen.server_errors, seen.other_errors
        );
    }
    Ok(summarise(&seen, wall_s))
}

fn summarise(seen: &Seen, wall_s: f64) -> Vec<Measurement> {
    let all: Vec<f64> = seen.latencies_ms.iter().flatten().copied().collect();
    let p = |samples: &[f64], q| percentile(samples, q).unwrap_or(f64::NAN);
    let mut out = vec![
        m("requests_per_s", "successful requests per second, all clients", "req/s", all.len() as f64 / wall_s),
        m("p50_ms", "latency p50, all endpoints", "ms", p(&all, 50.0)),
        m("p99_ms", "latency p99, all endpoints", "ms", p(&all, 99.0)),
    ];
    for ((name, path), samples) in ENDPOINTS.iter().zip(&seen.latencies_ms) {
        out.push(m(&format!("{name}_p50_ms"), &format!("GET {path} p50"), "ms", p(samples, 50.0)));
        out.push(m(&format!("{name}_p99_ms"), &format!("GET {path} p99"), "ms", p(samples, 99.0)));
    }
    out.push(m("errors_5xx", "answers with a 5xx status (must be 0)", "", seen.server_errors as f64));
    out.push(m("errors_other", "other failed requests (4xx, transport, timeout)", "", seen.other_errors as f64));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_only_successes_in_throughput_and_keeps_errors_apart() {
        let seen = Seen {
            latencies_ms: [vec![1.0, 3.0], vec![10.0], vec![]],
            server_errors: 2,
            other_errors: 1,
            first_error: None,
        };
        let out = summarise(&seen, 1.5);
        let value = |key: &str| out.iter().find(|m| m.key == key).map(|m| m.value);
        assert_eq!(value("requests_per_s"), Some(2.0));
        assert_eq!(value("p50_ms"), Some(3.0));
        assert_eq!(value("dags_p50_ms"), Some(2.0));
        assert!(value("task_instances_p99_ms").is_some_and(f64::is_nan));
        assert_eq!(value("errors_5xx"), Some(2.0));
        assert_eq!(value("errors_other"), Some(1.0));
    }
}
