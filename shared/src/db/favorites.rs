//! Queries on `dag_favorites`: the DAGs each user marked as a favorite.

use super::{DbError, GenericClient};

/// Marks `dag_id` as a favorite of `username`; false when the DAG does not exist.
/// Marking it again changes nothing.
pub async fn add(db: &impl GenericClient, username: &str, dag_id: &str) -> Result<bool, DbError> {
    let rows = db
        .query(
            r#"
INSERT INTO dag_favorites (username, dag_id)
SELECT $1, dag_id FROM dags WHERE dag_id = $2
ON CONFLICT (username, dag_id) DO UPDATE SET username = EXCLUDED.username
RETURNING dag_id"#,
            &[&username, &dag_id],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// Removes `dag_id` from the favorites of `username`; false when it was not one.
pub async fn remove(db: &impl GenericClient, username: &str, dag_id: &str) -> Result<bool, DbError> {
    let deleted =
        db.execute("DELETE FROM dag_favorites WHERE username = $1 AND dag_id = $2", &[&username, &dag_id]).await?;
    Ok(deleted > 0)
}

/// Which of `dag_ids` are favorites of `username`.
pub async fn of_user(db: &impl GenericClient, username: &str, dag_ids: &[String]) -> Result<Vec<String>, DbError> {
    let rows = db
        .query("SELECT dag_id FROM dag_favorites WHERE username = $1 AND dag_id = ANY($2)", &[&username, &dag_ids])
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
