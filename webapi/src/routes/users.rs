//! `/api/v2/gust/users`: who may call the API and with which role (a gust
//! extension; admins only, reads included). Every change is logged with the
//! acting admin's name, never with a password. A changed password or role, or
//! a deletion, ends the user's tokens issued before (see `auth::authorize`).

use axum::{extract::State, http::StatusCode, Extension, Json};
use chrono::{DateTime, Utc};
use gust_shared::db::{
    self,
    users::{UserError, UserRow},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::pagination::PageParams;
use crate::{
    auth::{self, AuthError, CurrentUser, Role},
    error::ApiError,
    extract::{ApiJson, ApiPath, ApiQuery},
    AppState,
};

/// One user, without any trace of the password.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserResponse {
    /// The login name.
    username: String,
    /// `viewer`, `operator` or `admin`.
    role: String,
    /// When the user was created.
    created_at: DateTime<Utc>,
    /// When the password or role last changed.
    updated_at: DateTime<Utc>,
}

/// A page of users, by name.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserCollection {
    /// The users of this page.
    users: Vec<UserResponse>,
    /// How many users there are.
    total_entries: i64,
}

impl From<UserRow> for UserResponse {
    fn from(user: UserRow) -> Self {
        Self { username: user.username, role: user.role, created_at: user.created_at, updated_at: user.updated_at }
    }
}

/// The body of `POST /api/v2/gust/users` (no `Debug`: it holds a password).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserBody {
    /// The login name: non-empty, without leading or trailing spaces.
    #[schema(pattern = r"^\S(?:[\s\S]*\S)?$")]
    username: String,
    /// At least 8 characters.
    #[schema(min_length = 8)]
    password: String,
    /// `viewer`, `operator` or `admin`.
    #[schema(pattern = "^(viewer|operator|admin)$")]
    role: String,
}

/// The body of `PATCH /api/v2/gust/users/{username}`: a new role, a new password, or both.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserPatchBody {
    /// `viewer`, `operator` or `admin`.
    #[serde(default)]
    #[schema(pattern = "^(viewer|operator|admin)$")]
    role: Option<String>,
    /// At least 8 characters.
    #[serde(default)]
    #[schema(min_length = 8)]
    password: Option<String>,
}

impl From<UserError> for ApiError {
    fn from(error: UserError) -> Self {
        match error {
            UserError::Duplicate(_) | UserError::LastAdmin { .. } => ApiError::Conflict(error.to_string()),
            UserError::NotFound(_) => ApiError::NotFound(error.to_string()),
            UserError::Db(db) => ApiError::Db(db),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::UnknownRole(_) | AuthError::WeakPassword | AuthError::BadUsername => {
                ApiError::BadRequest(error.to_string())
            }
            AuthError::Db(db) => ApiError::Db(db),
            AuthError::Hash(_) | AuthError::Token(_) => {
                tracing::error!(%error, "cannot hash a password");
                ApiError::with_status(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal server error; the gust-webapi log has the details",
                )
            }
        }
    }
}

/// The 404 for an unknown user.
fn user_not_found(username: &str) -> ApiError {
    UserError::NotFound(username.to_string()).into()
}

/// `GET /api/v2/gust/users`
#[utoipa::path(get, path = "/api/v2/gust/users", tag = "User (gust)", params(PageParams), responses((status = 200, body = UserCollection)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<UserCollection>, ApiError> {
    let page = page.page()?;
    let (users, total_entries) = db::users::list(&state.db().await?, page.limit, page.offset).await?;
    Ok(Json(UserCollection { users: users.into_iter().map(UserResponse::from).collect(), total_entries }))
}

/// `POST /api/v2/gust/users`: 201 with the new user; 409 when the name is taken.
#[utoipa::path(post, path = "/api/v2/gust/users", tag = "User (gust)", request_body = UserBody, responses((status = 201, body = UserResponse), (status = 409, description = "A user with this name exists")))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(actor): Extension<CurrentUser>,
    ApiJson(body): ApiJson<UserBody>,
) -> Result<(StatusCode, Json<UserResponse>), ApiError> {
    auth::check_username(&body.username)?;
    let role: Role = body.role.parse()?;
    auth::check_password(&body.password)?;
    let hash = auth::hash_password_off_thread(body.password).await?;
    let user = db::users::insert(&state.db().await?, &body.username, &hash, role.as_str()).await?;
    tracing::info!(actor = %actor.username, username = %user.username, %role, "user created through the API");
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// `GET /api/v2/gust/users/{username}`
#[utoipa::path(get, path = "/api/v2/gust/users/{username}", tag = "User (gust)", params(("username" = String, Path, description = "The user's login name")), responses((status = 200, body = UserResponse)))]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    ApiPath(username): ApiPath<String>,
) -> Result<Json<UserResponse>, ApiError> {
    let user = db::users::get(&state.db().await?, &username).await?.ok_or_else(|| user_not_found(&username))?;
    Ok(Json(user.into()))
}

/// `PATCH /api/v2/gust/users/{username}`: a new role and/or password; the
/// user's older tokens stop working. 409 when it would demote the last admin.
#[utoipa::path(patch, path = "/api/v2/gust/users/{username}", tag = "User (gust)", params(("username" = String, Path, description = "The user's login name")), request_body = UserPatchBody, responses((status = 200, body = UserResponse), (status = 409, description = "It would demote the last admin")))]
pub(crate) async fn patch(
    State(state): State<AppState>,
    Extension(actor): Extension<CurrentUser>,
    ApiPath(username): ApiPath<String>,
    ApiJson(body): ApiJson<UserPatchBody>,
) -> Result<Json<UserResponse>, ApiError> {
    if body.role.is_none() && body.password.is_none() {
        return Err(ApiError::BadRequest("give a new `role`, a new `password`, or both".into()));
    }
    let role = body.role.as_deref().map(str::parse::<Role>).transpose()?;
    let hash = match body.password {
        Some(password) => {
            auth::check_password(&password)?;
            Some(auth::hash_password_off_thread(password).await?)
        }
        None => None,
    };
    let mut db = state.db().await?;
    let user = db::users::update(&mut db, &username, hash.as_deref(), role.map(Role::as_str)).await?;
    tracing::info!(
        actor = %actor.username,
        username = %user.username,
        role = %user.role,
        password_changed = hash.is_some(),
        "user changed through the API"
    );
    Ok(Json(user.into()))
}

/// `DELETE /api/v2/gust/users/{username}`: 204; the user's tokens stop
/// working. 409 for the last admin.
#[utoipa::path(delete, path = "/api/v2/gust/users/{username}", tag = "User (gust)", params(("username" = String, Path, description = "The user's login name")), responses((status = 204, description = "Deleted"), (status = 409, description = "The user is the last admin")))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Extension(actor): Extension<CurrentUser>,
    ApiPath(username): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let mut db = state.db().await?;
    db::users::delete(&mut db, &username).await?;
    tracing::info!(actor = %actor.username, %username, "user deleted through the API");
    Ok(StatusCode::NO_CONTENT)
}
