//! Queries on `connection_tests`: the outcome of connection tests the webapi
//! runs in the background (`POST /api/v2/connections/enqueue-test`), by token.

use chrono::{DateTime, Utc};
use tokio_postgres::error::SqlState;

use super::{DbError, GenericClient};

/// An active test (pending, queued or running) older than this is taken to have
/// died with the webapi that ran it, and is failed before a new one is accepted.
pub const STALE_AFTER_SECS: f64 = 300.0;

/// One connection test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionTestRow {
    /// The secret the client polls with.
    pub token: String,
    /// The connection tested.
    pub connection_id: String,
    /// `pending`, `running`, `success` or `failed`.
    pub state: String,
    /// What the test said.
    pub result_message: Option<String>,
    /// When it was asked for.
    pub created_at: DateTime<Utc>,
}

/// Why a test could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionTestError {
    /// A test of that connection is still active.
    #[error("a test of connection `{0}` is still running; poll it with GET /api/v2/connections/enqueue-test")]
    Active(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

const COLUMNS: &str = "token, connection_id, state, result_message, created_at";

fn test_row(row: &tokio_postgres::Row) -> ConnectionTestRow {
    ConnectionTestRow {
        token: row.get("token"),
        connection_id: row.get("connection_id"),
        state: row.get("state"),
        result_message: row.get("result_message"),
        created_at: row.get("created_at"),
    }
}

/// Records a pending test of `connection_id` under `token`, after failing stale active tests.
pub async fn enqueue(
    db: &impl GenericClient,
    token: &str,
    connection_id: &str,
    commit_on_success: bool,
) -> Result<ConnectionTestRow, ConnectionTestError> {
    db.execute(
        r#"
UPDATE connection_tests SET state = 'failed', updated_at = now(),
    result_message = 'the webapi running this test stopped before it finished'
WHERE state IN ('pending', 'queued', 'running') AND updated_at < now() - make_interval(secs => $1)"#,
        &[&STALE_AFTER_SECS],
    )
    .await
    .map_err(DbError::from)?;
    let sql = format!(
        "INSERT INTO connection_tests (token, connection_id, commit_on_success) VALUES ($1, $2, $3) RETURNING {COLUMNS}"
    );
    match db.query_one(&sql, &[&token, &connection_id, &commit_on_success]).await {
        Ok(row) => Ok(test_row(&row)),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            Err(ConnectionTestError::Active(connection_id.to_string()))
        }
        Err(e) => Err(DbError::from(e).into()),
    }
}

/// Moves the test `token` to `state` with `message`.
pub async fn set_state(
    db: &impl GenericClient,
    token: &str,
    state: &str,
    message: Option<&str>,
) -> Result<(), DbError> {
    db.execute(
        "UPDATE connection_tests SET state = $2, result_message = $3, updated_at = now() WHERE token = $1",
        &[&token, &state, &message],
    )
    .await?;
    Ok(())
}

/// The test recorded under `token`.
pub async fn get(db: &impl GenericClient, token: &str) -> Result<Option<ConnectionTestRow>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM connection_tests WHERE token = $1");
    Ok(db.query_opt(&sql, &[&token]).await?.as_ref().map(test_row))
}
