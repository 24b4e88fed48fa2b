//! `POST /api/v2/dags/~/dagRuns/list`: the run listing with its filters in a
//! JSON body (Airflow's `get_list_dag_runs_batch`), for lists of DAG ids too
//! long for a query string. Same SQL as `GET …/dagRuns`.

use axum::{extract::State, Json};
use chrono::{DateTime, Utc};
use gust_shared::{
    db::{self, filters::TimeRange, runs::RunFilter, task_instances::listing::DurationRange},
    state::{RunState, ALL_RUN_STATES},
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{
    dag_runs::{DagRunCollection, ALL_DAGS},
    input_checks::at_least_zero,
    pagination::{OrderParams, MAX_LIMIT},
};
use crate::{
    error::ApiError,
    extract::{ApiJson, ApiPath},
    openapi::nullable_list_of,
    AppState,
};

/// The page size when the body names none (Airflow's default for this route).
const DEFAULT_PAGE_LIMIT: i64 = 100;

/// `{dag_id}` of the batch listing: only `~` (every DAG; name DAGs in `dag_ids`).
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // never constructed: it exists for its `IntoParams` impl
pub(crate) struct EveryDagPath {
    /// Always `~`; the DAGs to list go in the body's `dag_ids`.
    #[param(pattern = "^~$")]
    dag_id: String,
}

/// Body of `POST /api/v2/dags/~/dagRuns/list` (Airflow's `DAGRunsBatchBody`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct DagRunsBatchBody {
    /// A field to sort by (`-field` for descending): `id`, `state`, `dag_id`, `run_id`, `dag_run_id`,
    /// `run_type`, `logical_date`, `run_after`, `queued_at`, `start_date`, `end_date`, `duration`, `conf`.
    order_by: Option<String>,
    /// Runs to skip.
    #[schema(minimum = 0, default = 0)]
    page_offset: i64,
    /// Runs to answer at most (capped at 1000).
    #[schema(minimum = 0, default = 100)]
    page_limit: Option<i64>,
    /// Any of these DAGs; every DAG when absent.
    dag_ids: Option<Vec<String>>,
    /// Any of these states (queued, running, success, failed); null entries match no run.
    #[schema(schema_with = states_schema)]
    states: Option<Vec<Option<String>>>,
    run_after_gte: Option<DateTime<Utc>>,
    run_after_gt: Option<DateTime<Utc>>,
    run_after_lte: Option<DateTime<Utc>>,
    run_after_lt: Option<DateTime<Utc>>,
    logical_date_gte: Option<DateTime<Utc>>,
    logical_date_gt: Option<DateTime<Utc>>,
    logical_date_lte: Option<DateTime<Utc>>,
    logical_date_lt: Option<DateTime<Utc>>,
    start_date_gte: Option<DateTime<Utc>>,
    start_date_gt: Option<DateTime<Utc>>,
    start_date_lte: Option<DateTime<Utc>>,
    start_date_lt: Option<DateTime<Utc>>,
    end_date_gte: Option<DateTime<Utc>>,
    end_date_gt: Option<DateTime<Utc>>,
    end_date_lte: Option<DateTime<Utc>>,
    end_date_lt: Option<DateTime<Utc>>,
    /// Lasted at least this many seconds.
    duration_gte: Option<f64>,
    /// Lasted more than this many seconds.
    duration_gt: Option<f64>,
    /// Lasted at most this many seconds.
    duration_lte: Option<f64>,
    /// Lasted less than this many seconds.
    duration_lt: Option<f64>,
    /// A substring of the run's `conf` as JSON text.
    conf_contains: Option<String>,
}

/// The schema of `states`: a list of run states or nulls, or null.
fn states_schema() -> utoipa::openapi::schema::Schema {
    nullable_list_of(ALL_RUN_STATES.map(RunState::as_str))
}

impl DagRunsBatchBody {
    /// The run filter the body describes; an unknown state is a 422 naming it.
    fn filter(&self) -> Result<RunFilter, ApiError> {
        let mut states = Vec::new();
        let mut only_null_states = false;
        if let Some(given) = &self.states {
            for state in given.iter().flatten() {
                match RunState::parse(state) {
                    Some(state) => states.push(state.as_str().to_string()),
                    None => {
                        return Err(ApiError::invalid(
                            ["body", "states"],
                            "enum",
                            format!("`states` has an unknown value `{state}`; use queued, running, success or failed"),
                        ))
                    }
                }
            }
            only_null_states = states.is_empty() && !given.is_empty();
        }
        if only_null_states {
            // Every gust run has a state, so a list of nulls keeps none.
            states.push(String::new());
        }
        let range = |gte, gt, lte, lt| TimeRange { gte, gt, lte, lt };
        Ok(RunFilter {
            states,
            dag_ids: self.dag_ids.clone().unwrap_or_default(),
            logical_date: range(
                self.logical_date_gte,
                self.logical_date_gt,
                self.logical_date_lte,
                self.logical_date_lt,
            ),
            start_date: range(self.start_date_gte, self.start_date_gt, self.start_date_lte, self.start_date_lt),
            end_date: range(self.end_date_gte, self.end_date_gt, self.end_date_lte, self.end_date_lt),
            run_after: range(self.run_after_gte, self.run_after_gt, self.run_after_lte, self.run_after_lt),
            duration: DurationRange {
                gte: self.duration_gte,
                gt: self.duration_gt,
                lte: self.duration_lte,
                lt: self.duration_lt,
            },
            conf_contains: self.conf_contains.clone(),
            ..RunFilter::default()
        })
    }
}

/// `POST /api/v2/dags/~/dagRuns/list`: a page of the runs the body's filters
/// keep, across DAGs (`dag_ids` narrows them), newest first unless `order_by`
/// says otherwise. The path's DAG id must be `~`. A read: viewers may.
#[utoipa::path(post, path = "/api/v2/dags/{dag_id}/dagRuns/list", tag = "DagRun", params(EveryDagPath), request_body = DagRunsBatchBody, responses((status = 200, body = DagRunCollection)))]
pub(crate) async fn get_list_dag_runs_batch(
    State(state): State<AppState>,
    ApiPath(dag_id): ApiPath<String>,
    ApiJson(body): ApiJson<DagRunsBatchBody>,
) -> Result<Json<DagRunCollection>, ApiError> {
    if dag_id != ALL_DAGS {
        return Err(ApiError::invalid(
            ["path", "dag_id"],
            "literal_error",
            format!(
                "the batch run listing takes `~` as its DAG id, got `{dag_id}`; POST to /api/v2/dags/~/dagRuns/list \
                 with {{\"dag_ids\": [\"{dag_id}\"]}}"
            ),
        ));
    }
    if body.page_offset < 0 {
        return Err(at_least_zero(["body", "page_offset"], body.page_offset));
    }
    let limit = body.page_limit.unwrap_or(DEFAULT_PAGE_LIMIT);
    if limit < 0 {
        return Err(at_least_zero(["body", "page_limit"], limit));
    }
    let order: OrderParams =
        serde_json::from_value(serde_json::json!({ "order_by": body.order_by.iter().collect::<Vec<_>>() }))
            .map_err(|error| ApiError::BadRequest(format!("`order_by`: {error}")))?;
    let order_by = order.sql(db::runs::ORDER_FIELDS, db::runs::DEFAULT_ORDER, db::runs::ORDER_TIEBREAK)?;
    let filter = body.filter()?;
    let db = state.db().await?;
    let (runs, total_entries) =
        db::runs::list_filtered(&db, &filter, &order_by, limit.min(MAX_LIMIT), body.page_offset).await?;
    Ok(Json(DagRunCollection::of(&db, runs, total_entries).await?))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(value: serde_json::Value) -> DagRunsBatchBody {
        serde_json::from_value(value).expect("a valid body")
    }

    #[test]
    fn the_body_becomes_the_same_filter_the_query_string_would() {
        let filter =
            body(json!({"dag_ids": ["a", "b"], "states": ["failed", null], "duration_gte": 1.5})).filter().unwrap();
        assert_eq!(filter.dag_ids, ["a", "b"]);
        assert_eq!(filter.states, ["failed"]);
        assert_eq!(filter.duration.gte, Some(1.5));
        assert!(filter.dag_id.is_none());
    }

    #[test]
    fn unknown_states_and_fields_are_refused_and_null_states_match_nothing() {
        let error = body(json!({"states": ["done"]})).filter().unwrap_err().to_string();
        assert!(error.contains("`done`"), "{error}");
        assert!(serde_json::from_value::<DagRunsBatchBody>(json!({"dag_id": "x"})).is_err());
        assert_eq!(body(json!({"states": [null]})).filter().unwrap().states, [""]);
    }
}
