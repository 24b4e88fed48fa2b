//! Authentication and roles: `POST /auth/token` (and `POST /auth/token/cli`,
//! for command-line tools, with a shorter lifetime) trades a username and
//! password for an HS256 JWT, and one middleware checks the bearer token and
//! the role every `/api/v2` route needs ([`required_access`]).

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    str::FromStr,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use argon2::{
    password_hash::{phc::PasswordHash, PasswordHasher, PasswordVerifier},
    Argon2,
};
use axum::{
    extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State},
    http::{header, request::Parts, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    Json,
};
use deadpool_postgres::Pool;
use gust_shared::{
    db::{self, DbError},
    settings::{AuthSettings, MIN_JWT_SECRET_BYTES},
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::{error::ApiError, extract::ApiJson, AppState};

/// Failed logins of one username from one client address that are allowed within [`FAILED_LOGIN_WINDOW`].
pub const MAX_FAILED_LOGINS: usize = 5;

/// The sliding window in which failed logins are counted.
pub const FAILED_LOGIN_WINDOW: Duration = Duration::from_secs(60);

/// Shortest password accepted for a new user.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Tracked username+address pairs above which expired entries are swept.
const LIMITER_SWEEP_AT: usize = 10_000;

/// The message of every failed login, which never says whether the user exists.
const BAD_CREDENTIALS: &str = "invalid username or password";

/// What a user may do; each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything.
    Viewer,
    /// Also triggers, clears, marks, pauses and backfills.
    Operator,
    /// Also manages pools, variables and users.
    Admin,
}

impl Role {
    /// The name stored in the database and in tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = AuthError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(AuthError::UnknownRole(other.to_string())),
        }
    }
}

/// What a route needs from its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token.
    Public,
    /// A valid token with at least this role.
    Role(Role),
}

/// Why a user could not be created or a token not be made.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The role name is none of viewer, operator, admin.
    #[error("unknown role `{0}`; use viewer, operator or admin")]
    UnknownRole(String),
    /// The password is too weak to store.
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters")]
    WeakPassword,
    /// The username is empty or has surrounding spaces.
    #[error("the username must be non-empty without leading or trailing spaces")]
    BadUsername,
    /// Argon2 failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// Signing a token failed.
    #[error("signing a token failed: {0}")]
    Token(#[from] jsonwebtoken::errors::Error),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The claims of a gust API token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The username.
    pub sub: String,
    /// The user's role when the token was issued.
    pub role: Role,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Expires at, seconds since the epoch.
    pub exp: u64,
}

/// The caller of a request, as its token says; handlers may extract it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentUser {
    /// The username.
    pub username: String,
    /// The role.
    pub role: Role,
}

/// Token keys, token lifetimes and the failed-login limiter, shared by every request.
pub struct Auth {
    encoding: EncodingKey,
    decoding: DecodingKey,
    lifetime: Duration,
    cli_lifetime: Duration,
    limiter: LoginLimiter,
}

impl Auth {
    /// Signs and checks tokens with `secret`, issuing them for `lifetime`
    /// (command-line tokens for the default `cli_token_lifetime`; see [`Auth::with_cli_lifetime`]).
    pub fn with_secret(secret: &[u8], lifetime: Duration) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            lifetime,
            cli_lifetime: AuthSettings::default().cli_token_lifetime,
            limiter: LoginLimiter::default(),
        }
    }

    /// The same keys, issuing `POST /auth/token/cli` tokens for `cli_lifetime`.
    pub fn with_cli_lifetime(self, cli_lifetime: Duration) -> Self {
        Self { cli_lifetime, ..self }
    }

    /// A random secret of this process: tokens die with it and no other webapi accepts them.
    pub fn with_random_secret(lifetime: Duration) -> Self {
        Self::with_secret(&rand::random::<[u8; 32]>(), lifetime)
    }

    /// From settings; without `jwt_secret` (development) the secret is random and a warning says what that means.
    pub fn from_settings(settings: &AuthSettings) -> Self {
        let auth = match settings.jwt_secret.as_deref() {
            Some(secret) => {
                if secret.len() < MIN_JWT_SECRET_BYTES {
                    tracing::warn!(
                        "GUST__AUTH__JWT_SECRET is shorter than {MIN_JWT_SECRET_BYTES} bytes; production mode (GUST__AUTH__PRODUCTION) refuses it"
                    );
                }
                Self::with_secret(secret.as_bytes(), settings.token_lifetime)
            }
            None => {
                tracing::warn!(
                    "GUST__AUTH__JWT_SECRET is not set: using a random signing key, so tokens stop working when this \
                     webapi restarts and are not accepted by other webapi instances; set it (at least {MIN_JWT_SECRET_BYTES} bytes) \
                     and GUST__AUTH__PRODUCTION=true in production"
                );
                Self::with_random_secret(settings.token_lifetime)
            }
        };
        auth.with_cli_lifetime(settings.cli_token_lifetime)
    }

    /// How long issued tokens are valid.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// How long tokens from `POST /auth/token/cli` are valid.
    pub fn cli_lifetime(&self) -> Duration {
        self.cli_lifetime
    }

    /// A signed token for `username` with `role`, valid for the configured lifetime.
    pub fn issue(&self, username: &str, role: Role) -> Result<String, AuthError> {
        self.issue_for(username, role, self.lifetime)
    }

    /// A signed token for `username` with `role`, valid for `lifetime`.
    fn issue_for(&self, username: &str, role: Role, lifetime: Duration) -> Result<String, AuthError> {
        let iat = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let claims = Claims { sub: username.to_string(), role, iat, exp: iat + lifetime.as_secs().max(1) };
        Ok(jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?)
    }

    /// The claims of a token this webapi's key signed and that has not expired.
    pub fn verify(&self, token: &str) -> Result<Claims, jsonwebtoken::errors::Error> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)?.claims)
    }
}

/// Failed logins per username and client address in the last [`FAILED_LOGIN_WINDOW`], in memory.
#[derive(Default)]
struct LoginLimiter {
    failures: Mutex<HashMap<(String, String), VecDeque<Instant>>>,
}

impl LoginLimiter {
    /// Seconds to wait when the pair has used up its failures, else `None`.
    fn blocked_for(&self, key: &(String, String), now: Instant) -> Option<u64> {
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let times = failures.get_mut(key)?;
        while times.front().is_some_and(|t| now.duration_since(*t) >= FAILED_LOGIN_WINDOW) {
            times.pop_front();
        }
        if times.len() < MAX_FAILED_LOGINS {
            return None;
        }
        let oldest = *times.front()?;
        let wait = FAILED_LOGIN_WINDOW.saturating_sub(now.duration_since(oldest));
        Some(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
    }

    fn record_failure(&self, key: (String, String), now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if failures.len() >= LIMITER_SWEEP_AT {
            failures.retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) < FAILED_LOGIN_WINDOW));
        }
        failures.entry(key).or_default().push_back(now);
    }

    fn forget(&self, key: &(String, String)) {
        self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(key);
    }
}

/// The Argon2id PHC string of `password` (default parameters, random salt).
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let hash: PasswordHash =
        Argon2::default().hash_password(password.as_bytes()).map_err(|e| AuthError::Hash(e.to_string()))?;
    Ok(hash.to_string())
}

/// True when `password` matches the PHC string `hash`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Checks a new username: non-empty, without leading or trailing spaces.
pub fn check_username(username: &str) -> Result<(), AuthError> {
    if username.trim().is_empty() || username.trim() != username {
        return Err(AuthError::BadUsername);
    }
    Ok(())
}

/// Checks a new password: at least [`MIN_PASSWORD_CHARS`] characters.
pub fn check_password(password: &str) -> Result<(), AuthError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AuthError::WeakPassword);
    }
    Ok(())
}

/// [`hash_password`] on the blocking pool, so Argon2 does not stall the async workers.
pub async fn hash_password_off_thread(password: String) -> Result<String, AuthError> {
    tokio::task::spawn_blocking(move || hash_password(&password)).await.map_err(|e| AuthError::Hash(e.to_string()))?
}

/// Creates `username` with `password` and `role`, or resets an existing user's; true when it was created.
pub async fn create_or_update_user(pool: &Pool, username: &str, password: &str, role: Role) -> Result<bool, AuthError> {
    check_username(username)?;
    check_password(password)?;
    let hash = hash_password_off_thread(password.to_string()).await?;
    let client = pool.get().await.map_err(DbError::Pool)?;
    Ok(db::users::upsert(&client, username, &hash, role.as_str()).await?)
}

/// At webapi start: creates or updates the admin named in the settings, and
/// warns when nobody could log in.
pub async fn bootstrap_users(pool: &Pool, settings: &AuthSettings) -> Result<(), AuthError> {
    if let (Some(username), Some(password)) = (&settings.admin_username, &settings.admin_password) {
        // Rewriting an unchanged admin would end its tokens (they die with every password
        // or role change), so every restart would log the admin out: leave it alone.
        let current = db::users::get(&pool.get().await.map_err(DbError::Pool)?, username).await?;
        let unchanged = match current.filter(|user| user.role == Role::Admin.as_str()) {
            Some(user) => {
                let password = password.clone();
                tokio::task::spawn_blocking(move || verify_password(&password, &user.password_hash))
                    .await
                    .unwrap_or(false)
            }
            None => false,
        };
        if unchanged {
            tracing::info!(%username, "admin user from GUST__AUTH__ADMIN_USERNAME is up to date");
        } else {
            let created = create_or_update_user(pool, username, password, Role::Admin).await?;
            tracing::info!(%username, "{} admin user from GUST__AUTH__ADMIN_USERNAME", if created { "created" } else { "updated" });
        }
    }
    let client = pool.get().await.map_err(DbError::Pool)?;
    if db::users::count(&client).await? == 0 {
        tracing::warn!(
            "there are no users, so nobody can use the API: set GUST__AUTH__ADMIN_USERNAME and GUST__AUTH__ADMIN_PASSWORD \
             and restart, or run `GUST_NEW_USER_PASSWORD=… gust-webapi create-user --username NAME --role admin`"
        );
    }
    Ok(())
}

/// The body of `POST /auth/token` and `POST /auth/token/cli` (Airflow's `LoginBody`).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = LoginBody)]
pub(crate) struct LoginRequest {
    username: String,
    password: String,
}

/// The answer of `POST /auth/token` and `POST /auth/token/cli` (Airflow's simple auth manager shape).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = LoginResponse)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
}

/// The client's address, `unknown` when the server was not started with connect info (tests).
pub(crate) struct ClientAddress(String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let address = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(a)| a.ip().to_string());
        Ok(Self(address.unwrap_or_else(|| "unknown".into())))
    }
}

/// `POST /auth/token`: a token for a valid username and password.
#[utoipa::path(post, path = "/auth/token", tag = "Login", operation_id = "create_token", request_body = LoginRequest, responses(
    (status = 201, description = "A bearer token for the `/api/v2` routes", body = TokenResponse),
    (status = 401, description = "Wrong username or password"),
    (status = 429, description = "Too many failed logins for this user from this address; see `Retry-After`"),
    (status = 503, description = "The metadata database is unavailable; try again shortly"),
))]
pub(crate) async fn login(
    State(state): State<AppState>,
    ClientAddress(ip): ClientAddress,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let lifetime = state.auth.lifetime;
    issue_token(&state, &ip, body, lifetime).await
}

/// `POST /auth/token/cli`: a token for a command-line tool (`airflowctl auth login`),
/// valid for `GUST__AUTH__CLI_TOKEN_LIFETIME`; the same checks, limits and audit as `POST /auth/token`.
#[utoipa::path(post, path = "/auth/token/cli", tag = "Login", operation_id = "create_token_cli", request_body = LoginRequest, responses(
    (status = 201, description = "A bearer token for the `/api/v2` routes, valid for `GUST__AUTH__CLI_TOKEN_LIFETIME`", body = TokenResponse),
    (status = 401, description = "Wrong username or password"),
    (status = 429, description = "Too many failed logins for this user from this address; see `Retry-After`"),
    (status = 503, description = "The metadata database is unavailable; try again shortly"),
))]
pub(crate) async fn login_cli(
    State(state): State<AppState>,
    ClientAddress(ip): ClientAddress,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let lifetime = state.auth.cli_lifetime;
    issue_token(&state, &ip, body, lifetime).await
}

/// Checks the credentials (within the failed-login limit) and answers 201 with a token valid for `lifetime`.
async fn issue_token(state: &AppState, ip: &str, body: LoginRequest, lifetime: Duration) -> Result<Response, ApiError> {
    let auth = &state.auth;
    let ip = ip.to_string();
    let key = (body.username.clone(), ip.clone());
    if let Some(retry_after_secs) = auth.limiter.blocked_for(&key, Instant::now()) {
        tracing::warn!(username = %body.username, %ip, "login refused: too many failed attempts");
        return Err(ApiError::TooManyRequests {
            detail: format!("too many failed logins for this user from your address; try again in {retry_after_secs}s"),
            retry_after_secs,
        });
    }
    let user = db::users::get(&state.db().await?, &body.username).await?;
    let password = body.password;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let matches = tokio::task::spawn_blocking(move || match stored {
        Some(hash) => verify_password(&password, &hash),
        None => {
            // Spend the same time as for a real user, so timing does not tell which names exist.
            verify_password(&password, dummy_hash());
            false
        }
    })
    .await
    .unwrap_or(false);
    let role = user.as_ref().and_then(|u| u.role.parse::<Role>().ok());
    let (Some(role), true) = (role, matches) else {
        auth.limiter.record_failure(key, Instant::now());
        state.metrics.logins_failed.inc();
        tracing::warn!(username = %body.username, %ip, "failed login");
        return Err(ApiError::Unauthorized(BAD_CREDENTIALS.into()));
    };
    auth.limiter.forget(&key);
    let access_token = auth.issue_for(&body.username, role, lifetime).map_err(|e| {
        tracing::error!(error = %e, "cannot sign a token");
        ApiError::with_status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal server error; the gust-webapi log has the details",
        )
    })?;
    tracing::info!(username = %body.username, %role, %ip, "token issued");
    let body = TokenResponse { access_token, token_type: "bearer", expires_in: lifetime.as_secs().max(1) };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("not-a-real-password").unwrap_or_default())
}

/// Routes anyone may call, as in Airflow: health, version, the token endpoints, the
/// login and logout redirects (logout only clears the session cookie) and the API document.
pub(crate) const PUBLIC_ROUTES: [&str; 8] = [
    "/api/v2/monitor/health",
    "/api/v2/version",
    "/auth/token",
    "/auth/token/cli",
    "/api/v2/auth/login",
    "/api/v2/auth/logout",
    "/openapi.json",
    "/docs",
];

/// gust's user management, admin-only for every method.
const USERS_ROUTE: &str = "/api/v2/gust/users";

/// What `method` on the route template `route` needs. GETs are for viewers,
/// the run-repair, trigger and DAG-file routes for operators, everything else
/// (pools, variables, connections, and any route not named here) for admins.
pub fn required_access(method: &Method, route: &str) -> Access {
    const RUN: &str = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}";
    if PUBLIC_ROUTES.contains(&route) {
        return Access::Public;
    }
    // Who may do what, and how gust is configured, is for admins only, reading included.
    if route == USERS_ROUTE || route.starts_with("/api/v2/gust/users/") || route.starts_with("/api/v2/config") {
        return Access::Role(Role::Admin);
    }
    if *method == Method::GET || *method == Method::HEAD {
        return Access::Role(Role::Viewer);
    }
    // A listing whose filters are in a JSON body: a read.
    if *method == Method::POST
        && matches!(
            route,
            "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/list" | "/api/v2/dags/{dag_id}/dagRuns/list"
        )
    {
        return Access::Role(Role::Viewer);
    }
    // Favorites are the caller's own: any signed-in user may mark them.
    if *method == Method::POST && matches!(route, "/api/v2/dags/{dag_id}/favorite" | "/api/v2/dags/{dag_id}/unfavorite")
    {
        return Access::Role(Role::Viewer);
    }
    let operator = match route.strip_prefix(RUN) {
        Some("/taskInstances/{task_id}/xcomEntries") => *method == Method::POST,
        Some("/taskInstances/{task_id}/xcomEntries/{xcom_key}") => {
            *method == Method::PATCH || *method == Method::DELETE
        }
        Some(rest) if rest.starts_with("/taskInstances/{task_id}") => {
            let rest = rest.trim_start_matches("/taskInstances/{task_id}");
            *method == Method::PATCH && matches!(rest, "" | "/dry_run" | "/{map_index}" | "/{map_index}/dry_run")
        }
        Some("/taskInstances") => *method == Method::PATCH,
        Some("/taskGroupInstances/{group_id}" | "/taskGroupInstances/{group_id}/dry_run") => *method == Method::PATCH,
        Some("") => *method == Method::PATCH,
        Some("/clear") => *method == Method::POST,
        _ => match route {
            "/api/v2/dags" | "/api/v2/dags/{dag_id}" => *method == Method::PATCH,
            "/api/v2/parseDagFile/{file_token}" => *method == Method::PUT,
            "/api/v2/dags/{dag_id}/dagRuns" => *method == Method::POST || *method == Method::PATCH,
            "/api/v2/dags/{dag_id}/clearDagRuns" | "/api/v2/dags/{dag_id}/clearPartitions" => *method == Method::POST,
            "/api/v2/dags/{dag_id}/clearTaskInstances"
            | "/api/v2/backfills"
            | "/api/v2/backfills/dry_run"
            | "/api/v2/assets/events"
            | "/api/v2/assets/{asset_id}/materialize" => *method == Method::POST,
            "/api/v2/backfills/{backfill_id}/pause"
            | "/api/v2/backfills/{backfill_id}/unpause"
            | "/api/v2/backfills/{backfill_id}/cancel" => *method == Method::PUT,
            "/api/v2/gust/dagFiles/{file_name}" => *method == Method::PUT || *method == Method::DELETE,
            _ => false,
        },
    };
    Access::Role(if operator { Role::Operator } else { Role::Admin })
}

/// The middleware on every route: checks the bearer token and the role
/// [`required_access`] names; requests no route matches pass on to the 404.
pub(crate) async fn authorize(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let Some(route) = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()) else {
        return next.run(request).await;
    };
    let Access::Role(needed) = required_access(request.method(), &route) else {
        return next.run(request).await;
    };
    let user = match bearer_claims(&state.auth, &request) {
        Ok(claims) => match current_user(&state, claims).await {
            Ok(user) => user,
            Err(error) => return error.into_response(),
        },
        Err(error) => return error.into_response(),
    };
    if user.role < needed {
        return ApiError::Forbidden(format!(
            "{} {route} needs the {needed} role; user `{}` is {}",
            request.method(),
            user.username,
            user.role
        ))
        .into_response();
    }
    request.extensions_mut().insert(user);
    next.run(request).await
}

/// The caller as the users table has them now, for a token whose signature and
/// expiry are good. Tokens carry the role at issue time, so each request does
/// one lookup on the unique username index: a deleted user's token is refused,
/// as is one issued before the user's password or role last changed (`iat`
/// has whole seconds, so a token from the very second of the change survives
/// it), and the role is the stored one.
pub(crate) async fn current_user(state: &AppState, claims: Claims) -> Result<CurrentUser, ApiError> {
    let check = db::users::token_check(&state.db().await?, &claims.sub).await?;
    let Some(check) = check else {
        return Err(ApiError::Unauthorized(format!("user `{}` no longer exists; this token is void", claims.sub)));
    };
    if claims.iat < u64::try_from(check.changed_at.timestamp()).unwrap_or(0) {
        return Err(ApiError::Unauthorized(format!(
            "the password or role of user `{}` changed after this token was issued; get a new one from POST /auth/token",
            claims.sub
        )));
    }
    let role = check
        .role
        .parse::<Role>()
        .map_err(|_| ApiError::Db(DbError::Corrupt(format!("role `{}` of user `{}`", check.role, claims.sub))))?;
    Ok(CurrentUser { username: claims.sub, role })
}

/// The claims of the request's bearer token, if its signature and expiry are good.
fn bearer_claims(auth: &Arc<Auth>, request: &Request) -> Result<Claims, ApiError> {
    let header = request.headers().get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::Unauthorized(
            "this needs a bearer token: get one from POST /auth/token and send `Authorization: Bearer <token>`".into(),
        )
    })?;
    let token = header
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or_else(|| ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into()))?;
    auth.verify(token).map_err(|e| {
        let why = match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => "the token has expired",
            _ => "the token is not valid",
        };
        ApiError::Unauthorized(format!("{why}; get a new one from POST /auth/token"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route in `routes::api()` with the access it must need.
    const EVERY_ROUTE: &[(&str, &str, Access)] = &[
        ("GET", "/api/v2/monitor/health", Access::Public),
        ("GET", "/api/v2/version", Access::Public),
        ("GET", "/api/v2/dags", Access::Role(Role::Viewer)),
        ("GET", "/api/v2/dags/{dag_id}", Access::Role(Role::Viewer)),
        ("PATCH", "/api/v2/dags/{dag_id}", Access::Role(Role::Operator)),
        ("DELETE", "/api/v2/dags/{dag_id}", Access::Role(Role::Admin)),
        ("GET", "/api/v2/dags/{dag_id}/dagRuns", Access::Role(Role::Viewer)),
        ("POST", "/api/v2/dags/{dag_id}/dagRuns", Access::Role(Role::Operator)),
        ("GET", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}", Access::Role(Role::Viewer)),
        ("PATCH", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}", Access::Role(Role::Operator)),
        ("DELETE", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}", Access::Role(Role::Admin)),
        ("POST", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/clear", Access::Role(Role::Operator)),
        ("GET", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances", Access::Role(Role::Viewer)),
        ("GET", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}", Access::Role(Role::Viewer)),
        ("PATCH", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}", Access::Role(Role::Operator)),
        (
            "PATCH",
            "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/dry_run",
            Access::Role(Role::Operator),
        ),
        ("GET", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/tries", Access::Role(Role::Viewer)),
        (
            "GET",
            "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/tries/{task_try_number}",
            Access::Role(Role::Viewer),
        ),
        ("PATCH", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances", Access::Role(Role::Operator)),
        ("POST", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/list", Access::Role(Role::Viewer)),
        ("DELETE", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}", Access::Role(Role::Admin)),
        (
            "GET",
            "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}",
            Access::Role(Role::Viewer),
        ),
        (
            "PATCH",
            "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}",
            Access::Role(Role::Operator),
        ),
        (
            "PATCH",
            "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}/dry_run",
            Access::Role(Role::Operator),
        ),
        (
            "GET",
            "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/listMapped",
            Access::Role(Role::Viewer),
        ),
        (
            "GET",
            "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/dependencies",
            Access::Role(Role::Viewer),
        ),
        (
            "GET",
            "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}/dependencies",
            Access::Role(Role::Viewer),
        ),
        ("GET", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/links", Access::Role(Role::Viewer)),
        (
            "GET",
            "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/externalLogUrl/{try_number}",
            Access::Role(Role::Viewer),
        ),
        (
            "GET",
            "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}/tries",
            Access::Role(Role::Viewer),
        ),
        (
            "GET",
            "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}/tries/{task_try_number}",
            Access::Role(Role::Viewer),
        ),
        (
            "PATCH",
            "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskGroupInstances/{group_id}",
            Access::Role(Role::Operator),
        ),
        (
            "PATCH",
            "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskGroupInstances/{group_id}/dry_run",
            Access::Role(Role::Operator),
        ),
        (
            "GET",
            "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/logs/{try_number}",
            Access::Role(Role::Viewer),
        ),
        (
            "GET",
            "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries",
            Access::Role(Role::Viewer),
        ),
        (
            "GET",
            "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries/{xcom_key}",
            Access::Role(Role::Viewer),
        ),
        (
            "POST",
            "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries",
            Access::Role(Role::Operator),
        ),
        (
            "PATCH",
            "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries/{xcom_key}",
            Access::Role(Role::Operator),
        ),
        (
            "DELETE",
            "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries/{xcom_key}",
            Access::Role(Role::Operator),
        ),
        ("PATCH", "/api/v2/dags/{dag_id}/dagRuns", Access::Role(Role::Operator)),
        ("POST", "/api/v2/dags/{dag_id}/dagRuns/list", Access::Role(Role::Viewer)),
        ("GET", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/wait", Access::Role(Role::Viewer)),
        ("POST", "/api/v2/dags/{dag_id}/clearDagRuns", Access::Role(Role::Operator)),
        ("POST", "/api/v2/dags/{dag_id}/clearPartitions", Access::Role(Role::Operator)),
        ("POST", "/api/v2/dags/{dag_id}/clearTaskInstances", Access::Role(Role::Operator)),
        ("GET", "/api/v2/backfills", Access::Role(Role::Viewer)),
        ("POST", "/api/v2/backfills", Access::Role(Role::Operator)),
        ("POST", "/api/v2/backfills/dry_run", Access::Role(Role::Operator)),
        ("GET", "/api/v2/backfills/{backfill_id}", Access::Role(Role::Viewer)),
        ("PUT", "/api/v2/backfills/{backfill_id}/pause", Access::Role(Role::Operator)),
        ("PUT", "/api/v2/backfills/{backfill_id}/unpause", Access::Role(Role::Operator)),
        ("PUT", "/api/v2/backfills/{backfill_id}/cancel", Access::Role(Role::Operator)),
        ("GET", "/api/v2/importErrors", Access::Role(Role::Viewer)),
        ("GET", "/api/v2/pools", Access::Role(Role::Viewer)),
        ("POST", "/api/v2/pools", Access::Role(Role::Admin)),
        ("GET", "/api/v2/pools/{pool_name}", Access::Role(Role::Viewer)),
        ("PATCH", "/api/v2/pools/{pool_name}", Access::Role(Role::Admin)),
        ("DELETE", "/api/v2/pools/{pool_name}", Access::Role(Role::Admin)),
        ("GET", "/api/v2/gust/deadLetters", Access::Role(Role::Viewer)),
        ("GET", "/api/v2/gust/dagFiles", Access::Role(Role::Viewer)),
        ("GET", "/api/v2/gust/dagFiles/{file_name}", Access::Role(Role::Viewer)),
        ("PUT", "/api/v2/gust/dagFiles/{file_name}", Access::Role(Role::Operator)),
        ("DELETE", "/api/v2/gust/dagFiles/{file_name}", Access::Role(Role::Operator)),
        ("GET", "/api/v2/gust/users", Access::Role(Role::Admin)),
        ("POST", "/api/v2/gust/users", Access::Role(Role::Admin)),
        ("GET", "/api/v2/gust/users/{username}", Access::Role(Role::Admin)),
        ("PATCH", "/api/v2/gust/users/{username}", Access::Role(Role::Admin)),
        ("DELETE", "/api/v2/gust/users/{username}", Access::Role(Role::Admin)),
        ("GET", "/api/v2/variables", Access::Role(Role::Viewer)),
        ("POST", "/api/v2/variables", Access::Role(Role::Admin)),
        ("GET", "/api/v2/variables/{variable_key}", Access::Role(Role::Viewer)),
        ("PATCH", "/api/v2/variables/{variable_key}", Access::Role(Role::Admin)),
        ("DELETE", "/api/v2/variables/{variable_key}", Access::Role(Role::Admin)),
        ("GET", "/api/v2/connections", Access::Role(Role::Viewer)),
        ("POST", "/api/v2/connections", Access::Role(Role::Admin)),
        ("GET", "/api/v2/connections/{connection_id}", Access::Role(Role::Viewer)),
        ("PATCH", "/api/v2/connections/{connection_id}", Access::Role(Role::Admin)),
        ("DELETE", "/api/v2/connections/{connection_id}", Access::Role(Role::Admin)),
        ("GET", "/api/v2/eventLogs", Access::Role(Role::Viewer)),
        ("GET", "/api/v2/eventLogs/{event_log_id}", Access::Role(Role::Viewer)),
        ("GET", "/api/v2/assets", Access::Role(Role::Viewer)),
        ("GET", "/api/v2/assets/aliases", Access::Role(Role::Viewer)),
        ("GET", "/api/v2/assets/aliases/{asset_alias_id}", Access::Role(Role::Viewer)),
        ("GET", "/api/v2/assets/events", Access::Role(Role::Viewer)),
        ("POST", "/api/v2/assets/events", Access::Role(Role::Operator)),
        ("GET", "/api/v2/assets/{asset_id}", Access::Role(Role::Viewer)),
        ("POST", "/api/v2/assets/{asset_id}/materialize", Access::Role(Role::Operator)),
        ("GET", "/api/v2/assets/{asset_id}/queuedEvents", Access::Role(Role::Viewer)),
        ("DELETE", "/api/v2/assets/{asset_id}/queuedEvents", Access::Role(Role::Admin)),
        ("GET", "/api/v2/dags/{dag_id}/assets/queuedEvents", Access::Role(Role::Viewer)),
        ("DELETE", "/api/v2/dags/{dag_id}/assets/queuedEvents", Access::Role(Role::Admin)),
        ("GET", "/api/v2/dags/{dag_id}/assets/{asset_id}/queuedEvents", Access::Role(Role::Viewer)),
        ("DELETE", "/api/v2/dags/{dag_id}/assets/{asset_id}/queuedEvents", Access::Role(Role::Admin)),
        ("GET", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/upstreamAssetEvents", Access::Role(Role::Viewer)),
        ("GET", "/api/v2/config", Access::Role(Role::Admin)),
        ("GET", "/api/v2/config/section/{section}/option/{option}", Access::Role(Role::Admin)),
        ("PATCH", "/api/v2/connections", Access::Role(Role::Admin)),
        ("POST", "/api/v2/connections/defaults", Access::Role(Role::Admin)),
        ("POST", "/api/v2/connections/test", Access::Role(Role::Admin)),
        ("POST", "/api/v2/connections/enqueue-test", Access::Role(Role::Admin)),
        ("GET", "/api/v2/connections/enqueue-test", Access::Role(Role::Viewer)),
        ("GET", "/api/v2/dagSources/{dag_id}", Access::Role(Role::Viewer)),
        ("GET", "/api/v2/dagStats", Access::Role(Role::Viewer)),
        ("GET", "/api/v2/dagTags", Access::Role(Role::Viewer)),
        ("GET", "/api/v2/dagWarnings", Access::Role(Role::Viewer)),
        ("PATCH", "/api/v2/dags", Access::Role(Role::Operator)),
        ("POST", "/api/v2/dags/{dag_id}/favorite", Access::Role(Role::Viewer)),
        ("POST", "/api/v2/dags/{dag_id}/unfavorite", Access::Role(Role::Viewer)),
        ("GET", "/api/v2/dags/{dag_id}/dagVersions", Access::Role(Role::Viewer)),
        ("GET", "/api/v2/dags/{dag_id}/dagVersions/{version_number}", Access::Role(Role::Viewer)),
        ("GET", "/api/v2/dags/{dag_id}/details", Access::Role(Role::Viewer)),
        ("GET", "/api/v2/dags/{dag_id}/tasks", Access::Role(Role::Viewer)),
        ("GET", "/api/v2/dags/{dag_id}/tasks/{task_id}", Access::Role(Role::Viewer)),
        ("PUT", "/api/v2/parseDagFile/{file_token}", Access::Role(Role::Operator)),
        ("GET", "/api/v2/importErrors/{import_error_id}", Access::Role(Role::Viewer)),
        ("GET", "/api/v2/jobs", Access::Role(Role::Viewer)),
        ("GET", "/api/v2/plugins", Access::Role(Role::Viewer)),
        ("GET", "/api/v2/plugins/importErrors", Access::Role(Role::Viewer)),
        ("GET", "/api/v2/providers", Access::Role(Role::Viewer)),
        ("PATCH", "/api/v2/pools", Access::Role(Role::Admin)),
        ("PATCH", "/api/v2/variables", Access::Role(Role::Admin)),
        ("POST", "/auth/token", Access::Public),
        ("POST", "/auth/token/cli", Access::Public),
        ("GET", "/api/v2/auth/login", Access::Public),
        ("GET", "/api/v2/auth/logout", Access::Public),
        ("GET", "/openapi.json", Access::Public),
        ("GET", "/docs", Access::Public),
    ];

    #[test]
    fn every_route_needs_the_role_the_readme_table_names() {
        for (method, route, access) in EVERY_ROUTE {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            assert_eq!(required_access(&method, route), *access, "{method} {route}");
        }
    }

    #[test]
    fn the_route_table_of_this_test_lists_every_route_the_router_serves() {
        let document = crate::openapi_document();
        let mut served = std::collections::BTreeSet::new();
        for (path, item) in &document.paths.paths {
            let methods = [
                ("GET", &item.get),
                ("POST", &item.post),
                ("PUT", &item.put),
                ("PATCH", &item.patch),
                ("DELETE", &item.delete),
            ];
            for (method, operation) in methods {
                if operation.is_some() {
                    served.insert((method.to_string(), path.clone()));
                }
            }
        }
        served.insert(("GET".into(), "/openapi.json".into()));
        served.insert(("GET".into(), "/docs".into()));
        let listed: std::collections::BTreeSet<(String, String)> =
            EVERY_ROUTE.iter().map(|(method, route, _)| (method.to_string(), route.to_string())).collect();
        let unlisted: Vec<_> = served.difference(&listed).collect();
        let unserved: Vec<_> = listed.difference(&served).collect();
        assert!(unlisted.is_empty(), "served (and documented) but missing from EVERY_ROUTE: {unlisted:?}");
        assert!(unserved.is_empty(), "in EVERY_ROUTE but not served through `routes!`: {unserved:?}");
    }

    #[test]
    fn user_management_needs_an_admin_even_to_read() {
        for method in [Method::GET, Method::HEAD, Method::POST, Method::PATCH, Method::DELETE] {
            assert_eq!(required_access(&method, "/api/v2/gust/users"), Access::Role(Role::Admin), "{method}");
            assert_eq!(
                required_access(&method, "/api/v2/gust/users/{username}"),
                Access::Role(Role::Admin),
                "{method}"
            );
        }
        assert_eq!(required_access(&Method::GET, "/api/v2/gust/usersX"), Access::Role(Role::Viewer));
    }

    #[test]
    fn unknown_writes_need_an_admin() {
        assert_eq!(required_access(&Method::POST, "/api/v2/variables"), Access::Role(Role::Admin));
        assert_eq!(required_access(&Method::DELETE, "/api/v2/dags/{dag_id}"), Access::Role(Role::Admin));
    }

    #[test]
    fn roles_include_the_weaker_ones_and_parse_from_their_names() {
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
        for role in [Role::Viewer, Role::Operator, Role::Admin] {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("root".parse::<Role>().unwrap_err().to_string().contains("viewer, operator or admin"));
    }

    #[test]
    fn an_issued_token_verifies_and_carries_the_user_and_role() {
        let auth = Auth::with_secret(&[7; 32], Duration::from_secs(60));
        let claims = auth.verify(&auth.issue("ana", Role::Operator).unwrap()).unwrap();
        assert_eq!((claims.sub.as_str(), claims.role), ("ana", Role::Operator));
        assert_eq!(claims.exp - claims.iat, 60);
        let other = Auth::with_secret(&[8; 32], Duration::from_secs(60));
        assert!(other.verify(&auth.issue("ana", Role::Operator).unwrap()).is_err());
    }

    #[test]
    fn passwords_hash_to_argon2id_phc_strings_that_verify() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn the_limiter_blocks_after_five_failures_until_the_window_passes() {
        let limiter = LoginLimiter::default();
        let key = ("ana".to_string(), "10.0.0.1".to_string());
        let start = Instant::now();
        for _ in 0..MAX_FAILED_LOGINS {
            assert_eq!(limiter.blocked_for(&key, start), None);
            limiter.record_failure(key.clone(), start);
        }
        assert_eq!(limiter.blocked_for(&key, start), Some(60));
        assert_eq!(limiter.blocked_for(&key, start + Duration::from_secs(59)), Some(1));
        assert_eq!(limiter.blocked_for(&key, start + FAILED_LOGIN_WINDOW), None);
        let other_address = ("ana".to_string(), "10.0.0.2".to_string());
        assert_eq!(limiter.blocked_for(&other_address, start), None);
    }
}
