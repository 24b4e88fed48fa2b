//! Queries on `connections`: Airflow's Connections as stored, with the password
//! and the secret fields of `extra` already encrypted (see [`crate::connections`]).

use tokio_postgres::{error::SqlState, Row};

use super::{DbError, GenericClient};

/// One connection as stored: `password_encrypted` is a Fernet token.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectionRow {
    /// Unique id (Airflow's `conn_id`).
    pub connection_id: String,
    /// The kind of system, e.g. `postgres`, `http`.
    pub conn_type: String,
    /// Free text.
    pub description: Option<String>,
    /// Host name.
    pub host: Option<String>,
    /// User name.
    pub login: Option<String>,
    /// Database or path.
    pub schema: Option<String>,
    /// Port.
    pub port: Option<i32>,
    /// The password's Fernet token.
    pub password_encrypted: Option<String>,
    /// JSON text, its secret fields' values as Fernet tokens.
    pub extra: Option<String>,
}

/// What an update changes; `None` keeps a field, `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionChanges {
    /// The new type.
    pub conn_type: Option<String>,
    /// The new description.
    pub description: Option<Option<String>>,
    /// The new host.
    pub host: Option<Option<String>>,
    /// The new login.
    pub login: Option<Option<String>>,
    /// The new schema.
    pub schema: Option<Option<String>>,
    /// The new port.
    pub port: Option<Option<i32>>,
    /// The new password token.
    pub password_encrypted: Option<Option<String>>,
    /// The new extra (already encrypted where secret).
    pub extra: Option<Option<String>>,
}

/// Why a connection could not be created.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionDbError {
    /// A connection with that id exists.
    #[error("connection `{0}` already exists; change it with PATCH /api/v2/connections/{0}")]
    Duplicate(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Static `ORDER BY` expressions for the fields a list may be ordered by (Airflow's names).
pub const ORDER_FIELDS: [(&str, &str); 8] = [
    ("connection_id", "connection_id"),
    ("conn_id", "connection_id"),
    ("id", "created_at"),
    ("conn_type", "conn_type"),
    ("description", "description"),
    ("host", "host"),
    ("port", "port"),
    ("login", "login"),
];

/// The order of a list when the client names none: creation order, as Airflow's `id`.
pub const DEFAULT_ORDER: &str = "created_at ASC";

/// The last `ORDER BY` key of every list, so pages are stable.
pub const ORDER_TIEBREAK: &str = "connection_id ASC";

const COLUMNS: &str = "connection_id, conn_type, description, host, login, schema, port, password_encrypted, extra";

fn connection_row(row: &Row) -> ConnectionRow {
    ConnectionRow {
        connection_id: row.get("connection_id"),
        conn_type: row.get("conn_type"),
        description: row.get("description"),
        host: row.get("host"),
        login: row.get("login"),
        schema: row.get("schema"),
        port: row.get("port"),
        password_encrypted: row.get("password_encrypted"),
        extra: row.get("extra"),
    }
}

/// One page of connections whose id matches any of `id_contains` (case-insensitive
/// substrings, `%` and `_` wildcards as `ILIKE`; empty matches all), and how many match.
/// `order_by` must be static SQL built from [`ORDER_FIELDS`], [`DEFAULT_ORDER`] and
/// [`ORDER_TIEBREAK`], never from client text.
pub async fn list(
    db: &impl GenericClient,
    limit: i64,
    offset: i64,
    id_contains: &[String],
    order_by: &str,
) -> Result<(Vec<ConnectionRow>, i64), DbError> {
    let patterns: Vec<String> = id_contains.iter().map(|term| format!("%{term}%")).collect();
    const FILTER: &str = "(cardinality($1::text[]) = 0 OR connection_id ILIKE ANY ($1::text[]))";
    let total: i64 =
        db.query_one(&format!("SELECT count(*) FROM connections WHERE {FILTER}"), &[&patterns]).await?.get(0);
    let sql = format!("SELECT {COLUMNS} FROM connections WHERE {FILTER} ORDER BY {order_by} LIMIT $2 OFFSET $3");
    let rows = db.query(&sql, &[&patterns, &limit, &offset]).await?;
    Ok((rows.iter().map(connection_row).collect(), total))
}

/// One connection by id.
pub async fn get(db: &impl GenericClient, connection_id: &str) -> Result<Option<ConnectionRow>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM connections WHERE connection_id = $1");
    Ok(db.query_opt(&sql, &[&connection_id]).await?.as_ref().map(connection_row))
}

/// Which of `ids` are connections.
pub async fn existing(db: &impl GenericClient, ids: &[String]) -> Result<Vec<String>, DbError> {
    let rows = db.query("SELECT connection_id FROM connections WHERE connection_id = ANY($1)", &[&ids]).await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// Every connection, unlocked, for templates.
pub async fn every(db: &impl GenericClient) -> Result<Vec<ConnectionRow>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM connections ORDER BY connection_id");
    Ok(db.query(&sql, &[]).await?.iter().map(connection_row).collect())
}

/// Every connection, for re-encrypting them with a new key.
pub async fn all(db: &impl GenericClient) -> Result<Vec<ConnectionRow>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM connections ORDER BY connection_id FOR UPDATE");
    Ok(db.query(&sql, &[]).await?.iter().map(connection_row).collect())
}

/// Creates a connection; [`ConnectionDbError::Duplicate`] when the id is taken.
pub async fn create(db: &impl GenericClient, c: &ConnectionRow) -> Result<ConnectionRow, ConnectionDbError> {
    let sql = format!(
        r#"
INSERT INTO connections (connection_id, conn_type, description, host, login, schema, port, password_encrypted, extra)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {COLUMNS}"#
    );
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 9] = [
        &c.connection_id,
        &c.conn_type,
        &c.description,
        &c.host,
        &c.login,
        &c.schema,
        &c.port,
        &c.password_encrypted,
        &c.extra,
    ];
    match db.query_one(&sql, &params).await {
        Ok(row) => Ok(connection_row(&row)),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            Err(ConnectionDbError::Duplicate(c.connection_id.clone()))
        }
        Err(e) => Err(DbError::from(e).into()),
    }
}

/// Creates a connection unless one with its id exists; true when it was created.
pub async fn create_if_missing(db: &impl GenericClient, c: &ConnectionRow) -> Result<bool, DbError> {
    let inserted = db
        .execute(
            r#"
INSERT INTO connections (connection_id, conn_type, description, host, login, schema, port, password_encrypted, extra)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (connection_id) DO NOTHING"#,
            &[
                &c.connection_id,
                &c.conn_type,
                &c.description,
                &c.host,
                &c.login,
                &c.schema,
                &c.port,
                &c.password_encrypted,
                &c.extra,
            ],
        )
        .await?;
    Ok(inserted == 1)
}

/// Changes the given fields of a connection; `None` when it does not exist.
pub async fn update(
    db: &impl GenericClient,
    connection_id: &str,
    ch: &ConnectionChanges,
) -> Result<Option<ConnectionRow>, DbError> {
    let sql = format!(
        r#"
UPDATE connections SET
    conn_type = coalesce($2, conn_type),
    description = CASE WHEN $3 THEN $4 ELSE description END,
    host = CASE WHEN $5 THEN $6 ELSE host END,
    login = CASE WHEN $7 THEN $8 ELSE login END,
    schema = CASE WHEN $9 THEN $10 ELSE schema END,
    port = CASE WHEN $11 THEN $12 ELSE port END,
    password_encrypted = CASE WHEN $13 THEN $14 ELSE password_encrypted END,
    extra = CASE WHEN $15 THEN $16 ELSE extra END,
    updated_at = now()
WHERE connection_id = $1 RETURNING {COLUMNS}"#
    );
    let row = db
        .query_opt(
            &sql,
            &[
                &connection_id,
                &ch.conn_type,
                &ch.description.is_some(),
                &ch.description.clone().flatten(),
                &ch.host.is_some(),
                &ch.host.clone().flatten(),
                &ch.login.is_some(),
                &ch.login.clone().flatten(),
                &ch.schema.is_some(),
                &ch.schema.clone().flatten(),
                &ch.port.is_some(),
                &ch.port.flatten(),
                &ch.password_encrypted.is_some(),
                &ch.password_encrypted.clone().flatten(),
                &ch.extra.is_some(),
                &ch.extra.clone().flatten(),
            ],
        )
        .await?;
    Ok(row.as_ref().map(connection_row))
}

/// Replaces the encrypted values of a connection (after a key rotation).
pub async fn set_encrypted(
    db: &impl GenericClient,
    connection_id: &str,
    password_encrypted: Option<&str>,
    extra: Option<&str>,
) -> Result<(), DbError> {
    db.execute(
        "UPDATE connections SET password_encrypted = $2, extra = $3 WHERE connection_id = $1",
        &[&connection_id, &password_encrypted, &extra],
    )
    .await?;
    Ok(())
}

/// Deletes a connection; false when it does not exist.
pub async fn delete(db: &impl GenericClient, connection_id: &str) -> Result<bool, DbError> {
    Ok(db.execute("DELETE FROM connections WHERE connection_id = $1", &[&connection_id]).await? == 1)
}
