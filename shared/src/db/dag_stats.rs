//! Reads of `GET /api/v2/dagStats`: how many runs each DAG has in each state.

use super::{DbError, GenericClient};

/// Runs of one DAG in one state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCount {
    /// The DAG.
    pub dag_id: String,
    /// The run state.
    pub state: String,
    /// How many of its runs are in it.
    pub count: i64,
}

/// The run count per state of every DAG with runs, or of those in `dag_ids`
/// when it is not empty, ordered by DAG id and state.
pub async fn run_counts(db: &impl GenericClient, dag_ids: &[String]) -> Result<Vec<RunCount>, DbError> {
    let rows = db
        .query(
            r#"
SELECT dag_id, state, count(*) FROM dag_runs
WHERE cardinality($1::text[]) = 0 OR dag_id = ANY($1)
GROUP BY dag_id, state ORDER BY dag_id, state"#,
            &[&dag_ids],
        )
        .await?;
    Ok(rows.iter().map(|r| RunCount { dag_id: r.get(0), state: r.get(1), count: r.get(2) }).collect())
}
