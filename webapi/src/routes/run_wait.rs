//! `GET …/dagRuns/{dag_run_id}/wait`: follows a run until it finishes, as
//! Airflow's experimental `wait_dag_run_until_finished` does: one NDJSON line
//! `{"state": …}` at once and one per `interval` seconds, the last one (when
//! the run has finished) with the `return_value` XComs of the tasks named by
//! `result`. Each check borrows a pooled connection for one query and gives
//! it back, so a waiting client holds no connection between checks.

use std::time::Duration;

use axum::{
    body::Body,
    extract::State,
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
};
use futures_util::{stream, StreamExt};
use gust_shared::db::{self, runs::DagRunRow};
use serde_json::{Map, Value};
use utoipa::IntoParams;

use super::{dag_runs::run_or_404, list_query::QueryPairs, path_params::RunPath};
use crate::{
    error::ApiError,
    extract::{ApiPath, ApiQuery},
    AppState,
};

/// The media type of the answer: one JSON object a line.
const NDJSON: &str = "application/x-ndjson";

/// Checks never come closer together than this, whatever `interval` asks for.
const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// Checks never lie further apart than this (a client asking for more is told sooner).
const MAX_INTERVAL: Duration = Duration::from_secs(3600);

/// The query of `…/wait`, for the OpenAPI document only: the handler reads the raw query.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // never constructed: it exists for its `IntoParams` impl
pub(crate) struct WaitParams {
    /// Seconds between two checks of the run's state (more than 0; at least 0.1 is used).
    #[param(exclusive_minimum = 0)]
    interval: f64,
    /// A task whose `return_value` XCom the last line carries under `results`; repeat for more.
    /// None when absent (gust DAGs mark no task as the DAG's result).
    result: Option<Vec<String>>,
}

/// What the stream needs between two lines.
struct Waiter {
    state: AppState,
    dag_id: String,
    run_id: String,
    interval: Duration,
    result_task_ids: Vec<String>,
    /// The run as the previous check read it; `None` before the first line is sent.
    first: Option<DagRunRow>,
    done: bool,
}

/// `GET /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/wait?interval&result`:
/// streams the run's state as NDJSON until it has finished (see the module
/// doc). 404 when the run does not exist. A read: viewers may.
#[utoipa::path(
    get,
    path = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/wait",
    tag = "DagRun",
    params(RunPath, WaitParams),
    responses((status = 200, description = "One JSON object a line: `{\"state\": …}`, the last with `results`", content_type = "application/x-ndjson", body = String, example = json!("{\"state\":\"running\"}\n{\"state\":\"success\",\"results\":{\"op\":42}}\n")))
)]
pub(crate) async fn wait_dag_run_until_finished(
    State(state): State<AppState>,
    ApiPath((dag_id, run_id)): ApiPath<(String, String)>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let query = QueryPairs(pairs);
    let interval = interval_of(query.last("interval"))?;
    let result_task_ids = query.strings("result");
    let run = run_or_404(&state.db().await?, &dag_id, &run_id).await?;
    let waiter = Waiter { state, dag_id, run_id, interval, result_task_ids, first: Some(run), done: false };
    let lines = stream::unfold(waiter, |mut waiter| async move {
        if waiter.done {
            return None;
        }
        let line = waiter.next_line().await;
        if line.is_err() {
            waiter.done = true;
        }
        Some((line, waiter))
    })
    // Layers above may poll a body again after its end; a fused stream answers that with its end again.
    .fuse();
    let mut response = Body::from_stream(lines).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(NDJSON));
    Ok(response)
}

impl Waiter {
    /// The next line: the run read at the start (first line) or after one interval.
    async fn next_line(&mut self) -> Result<String, ApiError> {
        let run = match self.first.take() {
            Some(run) => run,
            None => {
                tokio::time::sleep(self.interval).await;
                self.read_run().await?
            }
        };
        let mut line = Map::new();
        line.insert("state".into(), Value::from(run.state.as_str()));
        if run.state.is_finished() {
            self.done = true;
            if !self.result_task_ids.is_empty() {
                let db = self.state.db().await?;
                let results = results_of(db::xcom::results(&db, run.id, &self.result_task_ids).await?);
                if !results.is_empty() {
                    line.insert("results".into(), Value::Object(results));
                }
            }
        }
        Ok(format!("{}\n", Value::Object(line)))
    }

    /// The run as it is now; an error when it was deleted meanwhile.
    async fn read_run(&self) -> Result<DagRunRow, ApiError> {
        let db = self.state.db().await?;
        db::runs::get(&db, &self.dag_id, &self.run_id).await?.ok_or_else(|| {
            ApiError::NotFound(format!("DAG run `{}` of DAG `{}` was deleted while waiting", self.run_id, self.dag_id))
        })
    }
}

/// The `interval` query parameter: seconds, more than 0, kept within
/// [`MIN_INTERVAL`] and [`MAX_INTERVAL`]; a 422 as FastAPI gives otherwise.
fn interval_of(raw: Option<&str>) -> Result<Duration, ApiError> {
    const LOC: [&str; 2] = ["query", "interval"];
    let Some(raw) = raw else {
        return Err(ApiError::invalid(
            LOC,
            "missing",
            "`interval` is required: the seconds between two checks of the run, e.g. ?interval=1",
        ));
    };
    match raw.trim().parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds > 0.0 => {
            Ok(Duration::from_secs_f64(seconds.min(MAX_INTERVAL.as_secs_f64())).max(MIN_INTERVAL))
        }
        Ok(seconds) if seconds.is_finite() => Err(ApiError::invalid(
            LOC,
            "greater_than",
            format!("`interval` must be a number of seconds above 0, such as 1.5, got `{raw}`"),
        )),
        _ => Err(ApiError::invalid(
            LOC,
            "float_parsing",
            format!("`interval` must be a number of seconds above 0, such as 1.5, got `{raw}`"),
        )),
    }
}

/// Return values by task id: a mapped task's as a list in map-index order, an unmapped one's as is.
fn results_of(rows: Vec<(String, i32, Value)>) -> Map<String, Value> {
    let mut results = Map::new();
    for (task_id, map_index, value) in rows {
        if map_index < 0 {
            results.insert(task_id, value);
        } else if let Value::Array(values) = results.entry(task_id).or_insert_with(|| Value::Array(Vec::new())) {
            values.push(value);
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_interval_is_positive_seconds_kept_within_bounds() {
        assert_eq!(interval_of(Some("1.5")).unwrap(), Duration::from_millis(1500));
        assert_eq!(interval_of(Some("0.001")).unwrap(), MIN_INTERVAL);
        assert_eq!(interval_of(Some("1e12")).unwrap(), MAX_INTERVAL);
        for bad in ["0", "-1", "soon", "NaN", "inf"] {
            let error = interval_of(Some(bad)).unwrap_err().to_string();
            assert!(error.contains("`interval`"), "{bad}: {error}");
        }
        assert!(interval_of(None).unwrap_err().to_string().contains("required"));
    }

    #[test]
    fn mapped_results_are_lists_and_unmapped_ones_values() {
        let rows = vec![("a".into(), -1, json!(1)), ("m".into(), 0, json!("x")), ("m".into(), 1, json!("y"))];
        assert_eq!(Value::Object(results_of(rows)), json!({"a": 1, "m": ["x", "y"]}));
    }
}
