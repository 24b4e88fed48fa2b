//! DAG files pushed over the API (`/api/v2/gust/dagFiles`), stored as text:
//! written by the API, read by the schedulers' folder scan as a second
//! source of DAG files. A change notifies the schedulers on commit.

use chrono::{DateTime, Utc};

use super::{signals::Signal, DbError, GenericClient};

/// One pushed DAG file.
#[derive(Debug, Clone, PartialEq)]
pub struct DagFileRow {
    /// Its name, unique among pushed files (`etl.yaml`).
    pub file_name: String,
    /// The YAML.
    pub source: String,
    /// SHA-256 of the YAML, hex.
    pub sha256: String,
    /// 1 for the first push, one more for each push that changed it.
    pub version: i32,
    /// Who pushed it last.
    pub updated_by: Option<String>,
    /// When.
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "file_name, source, sha256, version, updated_by, updated_at";

fn row(r: &tokio_postgres::Row) -> DagFileRow {
    DagFileRow {
        file_name: r.get(0),
        source: r.get(1),
        sha256: r.get(2),
        version: r.get(3),
        updated_by: r.get(4),
        updated_at: r.get(5),
    }
}

/// Stores `source` as `file_name` (a new version when it changed) and wakes the
/// schedulers; returns the row and whether it was created.
pub async fn put(
    db: &impl GenericClient,
    file_name: &str,
    source: &str,
    sha256: &str,
    updated_by: &str,
) -> Result<(DagFileRow, bool), DbError> {
    let stored = db
        .query_one(
            &format!(
                r#"
INSERT INTO dag_files (file_name, source, sha256, updated_by) VALUES ($1, $2, $3, $4)
ON CONFLICT (file_name) DO UPDATE SET source = EXCLUDED.source, sha256 = EXCLUDED.sha256,
    updated_by = EXCLUDED.updated_by, updated_at = now(),
    version = dag_files.version + CASE WHEN dag_files.sha256 = EXCLUDED.sha256 THEN 0 ELSE 1 END
RETURNING {COLUMNS}, (xmax = 0) AS created"#
            ),
            &[&file_name, &source, &sha256, &updated_by],
        )
        .await?;
    Signal::DagFilesChanged { file_name: file_name.to_string() }.send(db).await?;
    Ok((row(&stored), stored.get(6)))
}

/// Every pushed file, by name.
pub async fn all(db: &impl GenericClient) -> Result<Vec<DagFileRow>, DbError> {
    let rows = db.query(&format!("SELECT {COLUMNS} FROM dag_files ORDER BY file_name"), &[]).await?;
    Ok(rows.iter().map(row).collect())
}

/// One pushed file.
pub async fn get(db: &impl GenericClient, file_name: &str) -> Result<Option<DagFileRow>, DbError> {
    let found = db.query_opt(&format!("SELECT {COLUMNS} FROM dag_files WHERE file_name = $1"), &[&file_name]).await?;
    Ok(found.as_ref().map(row))
}

/// Removes a pushed file (its DAG is retired by the next scan) and wakes the
/// schedulers; returns whether it existed.
pub async fn delete(db: &impl GenericClient, file_name: &str) -> Result<bool, DbError> {
    let deleted = db.execute("DELETE FROM dag_files WHERE file_name = $1", &[&file_name]).await? == 1;
    if deleted {
        Signal::DagFilesChanged { file_name: file_name.to_string() }.send(db).await?;
    }
    Ok(deleted)
}
