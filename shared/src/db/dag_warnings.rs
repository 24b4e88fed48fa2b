//! Reads of `GET /api/v2/dagWarnings`: problems with a DAG found from its
//! stored definition, as Airflow's `dag_warning` table holds them.

use chrono::{DateTime, Utc};

use super::{DbError, GenericClient};

/// An active DAG whose tasks name pools that do not exist (Airflow's `non-existent pool` warning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingPools {
    /// The DAG.
    pub dag_id: String,
    /// The pools its tasks name that do not exist, sorted.
    pub pools: Vec<String>,
    /// When the DAG's file was last parsed.
    pub parsed_at: DateTime<Utc>,
}

/// Every active DAG whose tasks name a pool that does not exist, by DAG id.
pub async fn missing_pools(db: &impl GenericClient) -> Result<Vec<MissingPools>, DbError> {
    let rows = db
        .query(
            r#"
SELECT d.dag_id, array_agg(DISTINCT t.pool ORDER BY t.pool), d.last_parsed_at
FROM dags d
CROSS JOIN LATERAL (
    SELECT coalesce(task->>'pool', 'default_pool') AS pool FROM jsonb_array_elements(d.definition->'tasks') task
) t
LEFT JOIN pools p ON p.name = t.pool
WHERE d.is_active AND p.name IS NULL
GROUP BY d.dag_id, d.last_parsed_at ORDER BY d.dag_id"#,
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| MissingPools { dag_id: r.get(0), pools: r.get(1), parsed_at: r.get(2) }).collect())
}
