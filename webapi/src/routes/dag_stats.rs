//! `GET /api/v2/dagStats`: how many runs each DAG has in each state.

use axum::{extract::State, Json};
use gust_shared::db::{self, dag_stats::RunCount};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::list_query::{Filters, QueryPairs};
use crate::{error::ApiError, extract::ApiQuery, AppState};

/// Airflow's run states, in the order its `dagStats` lists them.
const RUN_STATES: [&str; 4] = ["queued", "running", "success", "failed"];

/// Airflow's `DagStatsStateResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DagStatsState {
    state: &'static str,
    count: i64,
}

/// Airflow's `DagStatsResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DagStats {
    dag_id: String,
    dag_display_name: String,
    stats: Vec<DagStatsState>,
}

/// Airflow's `DagStatsCollectionResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DagStatsCollection {
    dags: Vec<DagStats>,
    total_entries: i64,
}

/// The filter of `GET /dagStats`, for the OpenAPI document (the handler reads the raw query).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // never constructed: it exists for its `IntoParams` impl
pub(crate) struct DagStatsFilters {
    /// Only these DAGs (repeat the key for several); every DAG with runs when absent.
    dag_ids: Vec<String>,
}

/// One entry per DAG of `counts` (sorted by DAG id), each with every run state, 0 where it has none.
fn stats_of(counts: Vec<RunCount>) -> Vec<DagStats> {
    let mut dags: Vec<DagStats> = Vec::new();
    for count in counts {
        if dags.last().is_none_or(|last| last.dag_id != count.dag_id) {
            dags.push(DagStats {
                dag_id: count.dag_id.clone(),
                dag_display_name: count.dag_id.clone(),
                stats: RUN_STATES.iter().map(|state| DagStatsState { state, count: 0 }).collect(),
            });
        }
        let entry = dags.last_mut().expect("pushed above");
        if let Some(slot) = entry.stats.iter_mut().find(|s| s.state == count.state) {
            slot.count += count.count;
        }
    }
    dags
}

/// `GET /api/v2/dagStats`: the run count per state of each DAG that has runs (of `dag_ids` when given).
#[utoipa::path(get, path = "/api/v2/dagStats", operation_id = "get_dag_stats", tag = "DagStats", params(Filters<DagStatsFilters>), responses((status = 200, body = DagStatsCollection)))]
pub(crate) async fn get_dag_stats(
    State(state): State<AppState>,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> Result<Json<DagStatsCollection>, ApiError> {
    let dag_ids = QueryPairs(pairs).strings("dag_ids");
    let db = state.db().await?;
    let dags = stats_of(db::dag_stats::run_counts(&db, &dag_ids).await?);
    let total_entries = i64::try_from(dags.len()).unwrap_or(i64::MAX);
    Ok(Json(DagStatsCollection { dags, total_entries }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dag_lists_every_run_state_with_zeros_filled_in() {
        let count = |dag_id: &str, state: &str, count| RunCount { dag_id: dag_id.into(), state: state.into(), count };
        let stats = stats_of(vec![count("a", "failed", 2), count("a", "success", 5), count("b", "queued", 1)]);
        let counts: Vec<(&str, Vec<(&str, i64)>)> =
            stats.iter().map(|d| (d.dag_id.as_str(), d.stats.iter().map(|s| (s.state, s.count)).collect())).collect();
        assert_eq!(
            counts,
            [
                ("a", vec![("queued", 0), ("running", 0), ("success", 5), ("failed", 2)]),
                ("b", vec![("queued", 1), ("running", 0), ("success", 0), ("failed", 0)]),
            ]
        );
    }
}
