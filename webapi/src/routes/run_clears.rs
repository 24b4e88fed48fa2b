//! Clearing many runs at once: `POST /api/v2/dags/{dag_id}/clearDagRuns`
//! (Airflow's `clear_dag_runs`: the runs listed, or those of a partition) and
//! `POST /api/v2/dags/{dag_id}/clearPartitions` (Airflow's
//! `clear_dag_run_partitions`: resets runs' partition fields, and optionally
//! clears their task instances). Each run is cleared as
//! `POST …/dagRuns/{dag_run_id}/clear` clears it, all in one transaction.
//!
//! gust's timetables are not partitioned, so every run's `partition_key` and
//! `partition_date` are null: a partition selector matches no run, and a
//! `run_id` selector finds a run whose fields are already clear.

use axum::{extract::State, Json};
use chrono::{DateTime, Utc};
use gust_shared::db::{
    self,
    runs::{DagRunRow, PartitionSelector},
    task_instances::listing::{ListedTaskInstance, TaskInstanceRow},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    bulk_runs::BulkDagRunBody,
    dag_runs::{DagRunCollection, ALL_DAGS},
    dags::dag_or_404,
    path_params::DagPath,
    run_changes::{clear_locked_run, locked_run, ClearOptions},
    task_instances::TaskInstanceResponse,
};
use crate::{
    error::ApiError,
    extract::{ApiJson, ApiPath},
    AppState,
};

/// Body of `POST …/clearDagRuns` (Airflow's `BulkDAGRunClearBody`): the runs
/// in `dag_runs`, or a partition selector (exactly one of the three ways).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BulkDagRunClearBody {
    /// Only say which task instances a clear would reset (default true).
    #[serde(default = "yes")]
    #[schema(default = true)]
    dry_run: bool,
    /// Reset only failed and upstream_failed task instances.
    #[serde(default)]
    only_failed: bool,
    /// Not supported: must be false.
    #[serde(default)]
    #[schema(schema_with = crate::openapi::only_false)]
    only_new: bool,
    /// Accepted when each run already is on its DAG's latest version (gust pins runs to theirs).
    run_on_latest_version: Option<bool>,
    /// A note to set on each cleared run.
    #[schema(max_length = 1000)]
    note: Option<String>,
    /// The runs to clear (their `state` and `note` are not used).
    #[serde(default)]
    dag_runs: Vec<BulkDagRunBody>,
    /// Clear the runs of this partition key.
    partition_key: Option<String>,
    /// Clear the partitioned runs whose partition date is at or after this.
    partition_date_start: Option<DateTime<Utc>>,
    /// Clear the partitioned runs whose partition date is at or before this.
    partition_date_end: Option<DateTime<Utc>>,
}

/// Body of `POST …/clearPartitions` (Airflow's `ClearPartitionsBody`): exactly
/// one of `run_id`, `partition_key` or a partition date window.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClearPartitionsBody {
    /// Select the run with this run id.
    run_id: Option<String>,
    /// Select the runs of this partition key.
    partition_key: Option<String>,
    /// Select the partitioned runs whose partition date is at or after this.
    partition_date_start: Option<DateTime<Utc>>,
    /// Select the partitioned runs whose partition date is at or before this.
    partition_date_end: Option<DateTime<Utc>>,
    /// Also clear the task instances of the selected runs.
    #[serde(default)]
    clear_task_instances: bool,
    /// Only count what would change (default true).
    #[serde(default = "yes")]
    #[schema(default = true)]
    dry_run: bool,
}

/// Airflow's `ClearPartitionsResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ClearPartitionsResponse {
    /// Runs whose partition fields were (or would be) reset.
    dag_runs_cleared: i64,
    /// Task instances that were (or would be) cleared.
    task_instances_cleared: i64,
    /// Whether this was a dry run.
    dry_run: bool,
}

/// Airflow's `ClearTaskInstanceCollectionResponse`: task instances a clear would reset, of any run.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ClearTaskInstanceCollection {
    task_instances: Vec<TaskInstanceResponse>,
    total_entries: i64,
}

/// What `clearDagRuns` answers: the task instances it would reset, or the runs it cleared.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum ClearDagRunsResponse {
    /// The task instances a clear would reset (a dry run).
    WouldClear(ClearTaskInstanceCollection),
    /// The runs after the clear.
    Cleared(DagRunCollection),
}

/// The serde default of `dry_run`.
fn yes() -> bool {
    true
}

/// A 422 for a body whose fields do not fit together (Airflow's model validation).
fn unfit(detail: impl Into<String>) -> ApiError {
    ApiError::invalid(["body"], "value_error", detail)
}

/// The one selector among a run id (named `run_id_name` in messages), a
/// partition key and a partition date window; a 422 unless there is exactly one.
fn selector<'a>(
    run_id_name: &str,
    run_id: Option<&'a str>,
    partition_key: Option<&'a str>,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
) -> Result<PartitionSelector<'a>, ApiError> {
    let window = start.is_some() || end.is_some();
    if usize::from(run_id.is_some()) + usize::from(partition_key.is_some()) + usize::from(window) != 1 {
        return Err(unfit(format!(
            "give exactly one of {run_id_name}, partition_key, or a partition date window \
             (partition_date_start / partition_date_end)"
        )));
    }
    if let (Some(start), Some(end)) = (start, end) {
        if start > end {
            return Err(unfit("partition_date_start must be on or before partition_date_end"));
        }
    }
    Ok(match (run_id, partition_key) {
        (Some(run_id), _) => PartitionSelector::RunId(run_id),
        (_, Some(key)) => PartitionSelector::Key(key),
        _ => PartitionSelector::Dates { start, end },
    })
}

/// `POST /api/v2/dags/{dag_id}/clearDagRuns`: clears each run in `dag_runs`
/// (under `~` each names its DAG) or each run of a partition, as one run's
/// `…/clear` does, in one transaction; a missing run fails the whole request
/// (404). A dry run (the default) answers every task instance it would reset;
/// a real one the runs, queued again. Needs the operator role.
#[utoipa::path(post, path = "/api/v2/dags/{dag_id}/clearDagRuns", tag = "DagRun", params(DagPath), request_body = BulkDagRunClearBody, responses((status = 200, body = ClearDagRunsResponse), (status = 409, description = "A run changed meanwhile; try again")))]
pub(crate) async fn clear_dag_runs(
    State(state): State<AppState>,
    ApiPath(dag_id): ApiPath<String>,
    ApiJson(body): ApiJson<BulkDagRunClearBody>,
) -> Result<Json<ClearDagRunsResponse>, ApiError> {
    if body.only_new && body.only_failed {
        return Err(unfit("only_new and only_failed are mutually exclusive"));
    }
    let options =
        ClearOptions::checked(body.only_failed, body.only_new, body.run_on_latest_version, body.note.as_deref())?;
    let first_entry = body.dag_runs.first().map(|entry| entry.dag_run_id.as_str());
    let selector = selector(
        "dag_runs (non-empty)",
        first_entry,
        body.partition_key.as_deref(),
        body.partition_date_start,
        body.partition_date_end,
    )?;
    let mut db = state.db().await?;
    let tx = db.transaction().await?;
    let runs: Vec<DagRunRow> = match selector {
        PartitionSelector::RunId(_) => {
            let mut runs: Vec<DagRunRow> = Vec::new();
            for entry in &body.dag_runs {
                let run_dag_id = entry_dag_id(&dag_id, entry)?;
                if !runs.iter().any(|run| run.dag_id == run_dag_id && run.run_id == entry.dag_run_id) {
                    runs.push(locked_run(&tx, run_dag_id, &entry.dag_run_id).await?);
                }
            }
            runs
        }
        partition => {
            if dag_id == ALL_DAGS {
                return Err(ApiError::BadRequest(
                    "partition selectors need a concrete DAG id in the path; `~` is not supported with them".into(),
                ));
            }
            dag_or_404(&tx, &dag_id).await?;
            db::runs::partition_runs(&tx, &dag_id, partition).await?
        }
    };
    let mut would_clear: Vec<TaskInstanceResponse> = Vec::new();
    for run in &runs {
        let picked = clear_locked_run(&tx, run, &options, body.dry_run).await?;
        if body.dry_run {
            would_clear.extend(responses_of(picked, run));
        }
    }
    if body.dry_run {
        let total_entries = i64::try_from(would_clear.len()).unwrap_or(i64::MAX);
        return Ok(Json(ClearDagRunsResponse::WouldClear(ClearTaskInstanceCollection {
            task_instances: would_clear,
            total_entries,
        })));
    }
    let mut cleared = Vec::with_capacity(runs.len());
    for run in &runs {
        // As this request left them (queued), read before a scheduler moves them on.
        cleared.push(locked_run(&tx, &run.dag_id, &run.run_id).await?);
    }
    let total_entries = i64::try_from(cleared.len()).unwrap_or(i64::MAX);
    let response = DagRunCollection::of(&tx, cleared, total_entries).await?;
    tx.commit().await?;
    tracing::info!(dag_id, runs = total_entries, "DAG runs cleared through the API");
    Ok(Json(ClearDagRunsResponse::Cleared(response)))
}

/// The DAG of an entry of `dag_runs`: the path's, or under `~` the entry's own.
fn entry_dag_id<'a>(path_dag_id: &'a str, entry: &'a BulkDagRunBody) -> Result<&'a str, ApiError> {
    match (path_dag_id, entry.dag_id.as_deref()) {
        (ALL_DAGS, None | Some(ALL_DAGS)) => Err(ApiError::BadRequest(format!(
            "with `~` as the DAG id, every entry must give its dag_id (missing for dag_run_id `{}`)",
            entry.dag_run_id
        ))),
        (ALL_DAGS, Some(dag_id)) => Ok(dag_id),
        (path, Some(dag_id)) if dag_id != path => {
            Err(ApiError::BadRequest(format!("entry dag_id `{dag_id}` does not match the path's DAG id `{path}`")))
        }
        (path, _) => Ok(path),
    }
}

/// Task instances of `run` in Airflow's shape.
fn responses_of(tis: Vec<TaskInstanceRow>, run: &DagRunRow) -> impl Iterator<Item = TaskInstanceResponse> + '_ {
    tis.into_iter().map(|ti| {
        TaskInstanceResponse::listed(ListedTaskInstance {
            ti,
            logical_date: run.logical_date,
            run_after: run.run_after,
        })
    })
}

/// `POST /api/v2/dags/{dag_id}/clearPartitions`: resets the partition fields
/// of the runs one selector picks (`run_id`, `partition_key`, or a partition
/// date window) and, with `clear_task_instances`, clears their task instances
/// as a run's `…/clear` does (counting the ones it resets). Runs whose fields
/// are already clear (every gust run) count only for their task instances. A
/// dry run (the default) only counts. Needs the operator role.
#[utoipa::path(post, path = "/api/v2/dags/{dag_id}/clearPartitions", tag = "DagRun", params(DagPath), request_body = ClearPartitionsBody, responses((status = 200, body = ClearPartitionsResponse), (status = 409, description = "A run changed meanwhile; try again")))]
pub(crate) async fn clear_dag_run_partitions(
    State(state): State<AppState>,
    ApiPath(dag_id): ApiPath<String>,
    ApiJson(body): ApiJson<ClearPartitionsBody>,
) -> Result<Json<ClearPartitionsResponse>, ApiError> {
    let selector = selector(
        "run_id",
        body.run_id.as_deref(),
        body.partition_key.as_deref(),
        body.partition_date_start,
        body.partition_date_end,
    )?;
    let mut db = state.db().await?;
    let tx = db.transaction().await?;
    dag_or_404(&tx, &dag_id).await?;
    let options = ClearOptions::checked(false, false, None, None)?;
    let (mut dag_runs_cleared, mut task_instances_cleared) = (0_i64, 0_i64);
    for run in db::runs::partition_runs(&tx, &dag_id, selector).await? {
        let already_clear = run.partition_key.is_none() && run.partition_date.is_none();
        if already_clear && !body.clear_task_instances {
            continue;
        }
        if !already_clear {
            if !body.dry_run {
                db::runs::reset_partition(&tx, run.id).await?;
            }
            dag_runs_cleared += 1;
        }
        if body.clear_task_instances {
            let picked = clear_locked_run(&tx, &run, &options, body.dry_run).await?;
            task_instances_cleared += i64::try_from(picked.len()).unwrap_or(i64::MAX);
        }
    }
    tx.commit().await?;
    if !body.dry_run {
        tracing::info!(dag_id, dag_runs_cleared, task_instances_cleared, "DAG run partitions cleared through the API");
    }
    Ok(Json(ClearPartitionsResponse { dag_runs_cleared, task_instances_cleared, dry_run: body.dry_run }))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn exactly_one_selector_is_taken_and_a_window_must_be_in_order() {
        let day = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(selector("run_id", Some("r"), None, None, None).unwrap(), PartitionSelector::RunId("r"));
        assert_eq!(selector("run_id", None, Some("k"), None, None).unwrap(), PartitionSelector::Key("k"));
        assert_eq!(
            selector("run_id", None, None, Some(day), None).unwrap(),
            PartitionSelector::Dates { start: Some(day), end: None }
        );
        let none = selector("run_id", None, None, None, None).unwrap_err().to_string();
        assert!(none.contains("exactly one of run_id"), "{none}");
        assert!(selector("run_id", Some("r"), Some("k"), None, None).is_err());
        let backwards = selector("run_id", None, None, Some(day), Some(day - chrono::Duration::days(1)));
        assert!(backwards.unwrap_err().to_string().contains("on or before"));
    }
}
