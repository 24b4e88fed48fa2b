//! Queries on `users`: who may call the HTTP API, their password hash (an
//! Argon2 PHC string made by the webapi) and their role.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::{DbError, GenericClient};

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// Unique login name.
    pub username: String,
    /// PHC string of the password hash.
    pub password_hash: String,
    /// `viewer`, `operator` or `admin`.
    pub role: String,
    /// When the user was created.
    pub created_at: DateTime<Utc>,
    /// When the password or role last changed.
    pub updated_at: DateTime<Utc>,
}

fn user_row(row: &Row) -> UserRow {
    UserRow {
        username: row.get("username"),
        password_hash: row.get("password_hash"),
        role: row.get("role"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

/// One user by name.
pub async fn get(db: &impl GenericClient, username: &str) -> Result<Option<UserRow>, DbError> {
    let row = db
        .query_opt(
            "SELECT username, password_hash, role, created_at, updated_at FROM users WHERE username = $1",
            &[&username],
        )
        .await?;
    Ok(row.as_ref().map(user_row))
}

/// Creates the user, or sets the password hash and role of an existing one; true when it was created.
pub async fn upsert(db: &impl GenericClient, username: &str, password_hash: &str, role: &str) -> Result<bool, DbError> {
    let row = db
        .query_one(
            "INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3) \
             ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash, role = EXCLUDED.role, updated_at = now() \
             RETURNING (xmax = 0) AS created",
            &[&username, &password_hash, &role],
        )
        .await?;
    Ok(row.get("created"))
}

/// How many users exist.
pub async fn count(db: &impl GenericClient) -> Result<i64, DbError> {
    Ok(db.query_one("SELECT count(*) FROM users", &[]).await?.get(0))
}
