//! Reads of the UI's home page and DAG list: recent runs per DAG, run counts
//! by state, the definitions that say when each DAG runs next.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::{
    dag::Dag,
    db::{DbError, GenericClient},
};

/// One of a DAG's recent runs, for the small state bars of the DAG list.
#[derive(Debug, Clone)]
pub struct RecentRun {
    /// The DAG.
    pub dag_id: String,
    /// The run's id.
    pub run_id: String,
    /// Its state.
    pub state: String,
    /// When it became due.
    pub run_after: DateTime<Utc>,
}

/// Up to `per_dag` latest runs (by `run_after`) of each DAG in `dag_ids`, oldest first within a DAG.
pub async fn recent_runs(db: &impl GenericClient, dag_ids: &[String], per_dag: i64) -> Result<Vec<RecentRun>, DbError> {
    let rows = db
        .query(
            r#"
SELECT d.dag_id, r.run_id, r.state, r.run_after
FROM unnest($1::text[]) AS d(dag_id)
CROSS JOIN LATERAL (
    SELECT run_id, state, run_after, id FROM dag_runs
    WHERE dag_id = d.dag_id ORDER BY run_after DESC, id DESC LIMIT $2
) r
ORDER BY d.dag_id, r.run_after, r.id"#,
            &[&dag_ids, &per_dag],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| RecentRun { dag_id: r.get(0), run_id: r.get(1), state: r.get(2), run_after: r.get(3) })
        .collect())
}

/// The latest logical date of each DAG's scheduled runs, for DAGs in `dag_ids` that have one.
pub async fn last_scheduled_logical_dates(
    db: &impl GenericClient,
    dag_ids: &[String],
) -> Result<HashMap<String, DateTime<Utc>>, DbError> {
    let rows = db
        .query(
            r#"
SELECT dag_id, max(logical_date) FROM dag_runs
WHERE dag_id = ANY($1) AND run_type = 'scheduled' AND logical_date IS NOT NULL
GROUP BY dag_id"#,
            &[&dag_ids],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The definitions of the DAG versions `version_ids`, by version id.
pub async fn definitions(db: &impl GenericClient, version_ids: &[i64]) -> Result<HashMap<i64, Dag>, DbError> {
    let rows = db.query("SELECT id, definition FROM dag_versions WHERE id = ANY($1)", &[&version_ids]).await?;
    rows.iter()
        .map(|r| {
            let definition: serde_json::Value = r.get(1);
            let dag =
                serde_json::from_value(definition).map_err(|e| DbError::Corrupt(format!("DAG definition: {e}")))?;
            Ok((r.get(0), dag))
        })
        .collect()
}

/// How many runs are in each state among those due since `since` or still live.
pub async fn run_counts_since(db: &impl GenericClient, since: DateTime<Utc>) -> Result<Vec<(String, i64)>, DbError> {
    let rows = db
        .query(
            r#"
SELECT state, count(*) FROM dag_runs
WHERE run_after >= $1 OR state IN ('queued', 'running')
GROUP BY state ORDER BY state"#,
            &[&since],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// How many DAGs there are, and how many of them are paused (active DAGs only).
pub async fn dag_counts(db: &impl GenericClient) -> Result<(i64, i64), DbError> {
    let row = db.query_one("SELECT count(*), count(*) FILTER (WHERE is_paused) FROM dags WHERE is_active", &[]).await?;
    Ok((row.get(0), row.get(1)))
}

/// Every tag of an active DAG, sorted, for the DAG list's tag filter.
pub async fn all_tags(db: &impl GenericClient) -> Result<Vec<String>, DbError> {
    let rows = db.query("SELECT DISTINCT unnest(tags) AS tag FROM dags WHERE is_active ORDER BY tag", &[]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
