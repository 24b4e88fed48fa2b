//! Queries on `import_errors`: one row per DAG file that failed to parse.

use chrono::{DateTime, Utc};

use super::{DbError, GenericClient};

/// A DAG file that could not be imported.
#[derive(Debug, Clone)]
pub struct ImportErrorRow {
    /// Primary key (Airflow's `import_error_id`).
    pub id: i64,
    /// The file.
    pub filename: String,
    /// What was wrong.
    pub stacktrace: String,
    /// When it was last seen.
    pub timestamp: DateTime<Utc>,
}

/// Records (or refreshes) the error of `filename`.
pub async fn record(db: &impl GenericClient, filename: &str, problem: &str) -> Result<(), DbError> {
    db.execute(
        r#"
INSERT INTO import_errors (filename, stacktrace) VALUES ($1, $2)
ON CONFLICT (filename) DO UPDATE SET stacktrace = EXCLUDED.stacktrace, timestamp = now()
    WHERE import_errors.stacktrace IS DISTINCT FROM EXCLUDED.stacktrace"#,
        &[&filename, &problem],
    )
    .await?;
    Ok(())
}

/// Forgets errors of files that now parse or no longer exist.
pub async fn keep_only(db: &impl GenericClient, failing_files: &[String]) -> Result<(), DbError> {
    db.execute("DELETE FROM import_errors WHERE NOT (filename = ANY($1))", &[&failing_files]).await?;
    Ok(())
}

/// The fields an import-error listing may be ordered by (Airflow's names) and
/// their columns; only these static strings ever reach an `ORDER BY`.
pub const ORDER_FIELDS: &[(&str, &str)] = &[
    ("id", "id"),
    ("import_error_id", "id"),
    ("timestamp", "timestamp"),
    ("filename", "filename"),
    ("stacktrace", "stacktrace"),
];

/// One import error by id.
pub async fn get(db: &impl GenericClient, id: i64) -> Result<Option<ImportErrorRow>, DbError> {
    let row =
        db.query_opt("SELECT id, filename, stacktrace, timestamp FROM import_errors WHERE id = $1", &[&id]).await?;
    Ok(row.map(|r| ImportErrorRow { id: r.get(0), filename: r.get(1), stacktrace: r.get(2), timestamp: r.get(3) }))
}

/// A page of import errors in `order` (built from [`ORDER_FIELDS`]) and the total count.
pub async fn list(
    db: &impl GenericClient,
    limit: i64,
    offset: i64,
    order: &str,
) -> Result<(Vec<ImportErrorRow>, i64), DbError> {
    let sql =
        format!("SELECT id, filename, stacktrace, timestamp FROM import_errors ORDER BY {order} LIMIT $1 OFFSET $2");
    let rows = db.query(&sql, &[&limit, &offset]).await?;
    let total: i64 = db.query_one("SELECT count(*) FROM import_errors", &[]).await?.get(0);
    let errors = rows
        .iter()
        .map(|r| ImportErrorRow { id: r.get(0), filename: r.get(1), stacktrace: r.get(2), timestamp: r.get(3) })
        .collect();
    Ok((errors, total))
}
