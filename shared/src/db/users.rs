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
            r#"
INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3)
ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash, role = EXCLUDED.role, updated_at = now()
RETURNING (xmax = 0) AS created"#,
            &[&username, &password_hash, &role],
        )
        .await?;
    Ok(row.get("created"))
}

/// How many users exist.
pub async fn count(db: &impl GenericClient) -> Result<i64, DbError> {
    Ok(db.query_one("SELECT count(*) FROM users", &[]).await?.get(0))
}

/// Why a user could not be created, changed or deleted.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// A user with that name exists.
    #[error("user `{0}` already exists")]
    Duplicate(String),
    /// No user has that name.
    #[error("user `{0}` not found")]
    NotFound(String),
    /// The change would leave nobody who can manage users.
    #[error("user `{username}` is the last admin and cannot be {action}: nobody could manage users any more; make another user admin first")]
    LastAdmin {
        /// The admin.
        username: String,
        /// `deleted` or `demoted`.
        action: &'static str,
    },
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// One page of users by name, and how many there are.
pub async fn list(db: &impl GenericClient, limit: i64, offset: i64) -> Result<(Vec<UserRow>, i64), DbError> {
    let total: i64 = db.query_one("SELECT count(*) FROM users", &[]).await?.get(0);
    let rows = db
        .query(
            "SELECT username, password_hash, role, created_at, updated_at FROM users ORDER BY username LIMIT $1 OFFSET $2",
            &[&limit, &offset],
        )
        .await?;
    Ok((rows.iter().map(user_row).collect(), total))
}

/// Creates a user; [`UserError::Duplicate`] when the name is taken.
pub async fn insert(
    db: &impl GenericClient,
    username: &str,
    password_hash: &str,
    role: &str,
) -> Result<UserRow, UserError> {
    let row = db
        .query_opt(
            r#"
INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3) ON CONFLICT (username) DO NOTHING
RETURNING username, password_hash, role, created_at, updated_at"#,
            &[&username, &password_hash, &role],
        )
        .await
        .map_err(DbError::from)?;
    row.as_ref().map(user_row).ok_or_else(|| UserError::Duplicate(username.to_string()))
}

/// Locks every admin row until the transaction ends, so two concurrent
/// demotions or deletions cannot both see another admin left; returns the admins.
async fn lock_admins(tx: &impl GenericClient) -> Result<Vec<String>, DbError> {
    let rows = tx.query("SELECT username FROM users WHERE role = 'admin' ORDER BY username FOR UPDATE", &[]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Sets a user's password hash and/or role (`None` keeps it). `updated_at`
/// moves when either is set to something new, which ends the user's tokens
/// issued before. The last admin cannot be demoted ([`UserError::LastAdmin`]).
pub async fn update(
    db: &mut impl GenericClient,
    username: &str,
    password_hash: Option<&str>,
    role: Option<&str>,
) -> Result<UserRow, UserError> {
    let tx = db.transaction().await.map_err(DbError::from)?;
    let admins = lock_admins(&tx).await?;
    if role.is_some_and(|role| role != "admin") && admins.len() == 1 && admins[0] == username {
        return Err(UserError::LastAdmin { username: username.to_string(), action: "demoted" });
    }
    let row = tx
        .query_opt(
            r#"
UPDATE users SET password_hash = COALESCE($2, password_hash), role = COALESCE($3, role),
    updated_at = CASE WHEN $2::text IS NOT NULL OR role IS DISTINCT FROM COALESCE($3, role)
                      THEN now() ELSE updated_at END
WHERE username = $1 RETURNING username, password_hash, role, created_at, updated_at"#,
            &[&username, &password_hash, &role],
        )
        .await
        .map_err(DbError::from)?;
    let user = row.as_ref().map(user_row).ok_or_else(|| UserError::NotFound(username.to_string()))?;
    tx.commit().await.map_err(DbError::from)?;
    Ok(user)
}

/// Deletes a user (their tokens stop working); the last admin cannot be deleted ([`UserError::LastAdmin`]).
pub async fn delete(db: &mut impl GenericClient, username: &str) -> Result<(), UserError> {
    let tx = db.transaction().await.map_err(DbError::from)?;
    let admins = lock_admins(&tx).await?;
    if admins.len() == 1 && admins[0] == username {
        return Err(UserError::LastAdmin { username: username.to_string(), action: "deleted" });
    }
    let deleted = tx.execute("DELETE FROM users WHERE username = $1", &[&username]).await.map_err(DbError::from)?;
    if deleted == 0 {
        return Err(UserError::NotFound(username.to_string()));
    }
    tx.commit().await.map_err(DbError::from)?;
    Ok(())
}

/// What a bearer token is checked against on every request: the user's
/// current role and when their password or role last changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenCheck {
    /// The current role.
    pub role: String,
    /// When the password or role last changed; tokens issued before are void.
    pub changed_at: DateTime<Utc>,
}

/// The user's current role and last change, or `None` when the user no
/// longer exists; one lookup on the unique username index.
pub async fn token_check(db: &impl GenericClient, username: &str) -> Result<Option<TokenCheck>, DbError> {
    let statement = db.prepare_cached("SELECT role, updated_at FROM users WHERE username = $1").await?;
    let row = db.query_opt(&statement, &[&username]).await?;
    Ok(row.map(|r| TokenCheck { role: r.get(0), changed_at: r.get(1) }))
}
