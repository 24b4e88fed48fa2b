//! Queries on `variables`: Airflow's Variables, named text values that the
//! API manages and templates read as `var.value.<key>` / `var.json.<key>`.

use tokio_postgres::{error::SqlState, Row};

use super::{DbError, GenericClient};
use crate::template::Variables;

/// One variable as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariableRow {
    /// Unique key.
    pub key: String,
    /// The text value (JSON when the user stored JSON).
    pub value: String,
    /// Free text.
    pub description: Option<String>,
}

/// What an update changes; `None` keeps the current value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VariableChanges {
    /// The new value.
    pub value: Option<String>,
    /// The new description; `Some(None)` clears it.
    pub description: Option<Option<String>>,
}

/// Why a variable could not be created.
#[derive(Debug, thiserror::Error)]
pub enum VariableError {
    /// A variable with that key exists.
    #[error("variable `{0}` already exists; change it with PATCH /api/v2/variables/{0}")]
    Duplicate(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Static `ORDER BY` expressions for the fields a list may be ordered by
/// (Airflow's names: `id` is creation order, `_val` the value; gust never encrypts).
pub const ORDER_FIELDS: [(&str, &str); 5] = [
    ("key", "key"),
    ("id", "created_at"),
    ("_val", "value"),
    ("description", "description"),
    ("is_encrypted", "false::boolean"),
];

/// The order of a list when the client names none: creation order, as Airflow's `id`.
pub const DEFAULT_ORDER: &str = "created_at ASC";

/// The last `ORDER BY` key of every list, so pages are stable.
pub const ORDER_TIEBREAK: &str = "key ASC";

const COLUMNS: &str = "key, value, description";

fn variable_row(row: &Row) -> VariableRow {
    VariableRow { key: row.get("key"), value: row.get("value"), description: row.get("description") }
}

/// One page of variables whose key matches any of `key_contains` (case-insensitive
/// substrings where `%` and `_` are wildcards, as `ILIKE`; empty matches all), and
/// how many match. `order_by` must be static SQL built from [`ORDER_FIELDS`],
/// [`DEFAULT_ORDER`] and [`ORDER_TIEBREAK`], never from client text.
pub async fn list(
    db: &impl GenericClient,
    limit: i64,
    offset: i64,
    key_contains: &[String],
    order_by: &str,
) -> Result<(Vec<VariableRow>, i64), DbError> {
    let patterns: Vec<String> = key_contains.iter().map(|term| format!("%{term}%")).collect();
    const FILTER: &str = "(cardinality($1::text[]) = 0 OR key ILIKE ANY ($1::text[]))";
    let total: i64 =
        db.query_one(&format!("SELECT count(*) FROM variables WHERE {FILTER}"), &[&patterns]).await?.get(0);
    let sql = format!("SELECT {COLUMNS} FROM variables WHERE {FILTER} ORDER BY {order_by} LIMIT $2 OFFSET $3");
    let rows = db.query(&sql, &[&patterns, &limit, &offset]).await?;
    Ok((rows.iter().map(variable_row).collect(), total))
}

/// One variable by key.
pub async fn get(db: &impl GenericClient, key: &str) -> Result<Option<VariableRow>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM variables WHERE key = $1");
    Ok(db.query_opt(&sql, &[&key]).await?.as_ref().map(variable_row))
}

/// Which of `keys` are variables.
pub async fn existing(db: &impl GenericClient, keys: &[String]) -> Result<Vec<String>, DbError> {
    let rows = db.query("SELECT key FROM variables WHERE key = ANY($1)", &[&keys]).await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// Every variable's value by key, for templates.
pub async fn all_values(db: &impl GenericClient) -> Result<Variables, DbError> {
    let rows = db.query("SELECT key, value FROM variables", &[]).await?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

/// Creates a variable; [`VariableError::Duplicate`] when the key is taken.
pub async fn create(db: &impl GenericClient, variable: &VariableRow) -> Result<VariableRow, VariableError> {
    let sql = format!("INSERT INTO variables (key, value, description) VALUES ($1, $2, $3) RETURNING {COLUMNS}");
    match db.query_one(&sql, &[&variable.key, &variable.value, &variable.description]).await {
        Ok(row) => Ok(variable_row(&row)),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Err(VariableError::Duplicate(variable.key.clone())),
        Err(e) => Err(DbError::from(e).into()),
    }
}

/// Changes the given fields of a variable; `None` when it does not exist.
pub async fn update(
    db: &impl GenericClient,
    key: &str,
    changes: &VariableChanges,
) -> Result<Option<VariableRow>, DbError> {
    let sql = format!(
        r#"
UPDATE variables SET value = coalesce($2, value),
    description = CASE WHEN $3 THEN $4 ELSE description END, updated_at = now()
WHERE key = $1 RETURNING {COLUMNS}"#
    );
    let row = db
        .query_opt(
            &sql,
            &[&key, &changes.value, &changes.description.is_some(), &changes.description.clone().flatten()],
        )
        .await?;
    Ok(row.as_ref().map(variable_row))
}

/// Deletes a variable; false when it does not exist.
pub async fn delete(db: &impl GenericClient, key: &str) -> Result<bool, DbError> {
    Ok(db.execute("DELETE FROM variables WHERE key = $1", &[&key]).await? == 1)
}
