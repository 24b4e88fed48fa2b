//! Testing connections from the webapi (Airflow's `[core] test_connection`,
//! here `GUST__WEBAPI__TEST_CONNECTION`, off by default): `POST …/test` tests
//! and answers; `POST …/enqueue-test` records a test, runs it in the
//! background and answers with a token that `GET …/enqueue-test` polls.
//! Airflow hands enqueued tests to a worker; gust's workers take only task
//! messages, so the webapi that accepts a test runs it. Only `postgres` (connect
//! and `SELECT 1`) and `http`/`https` (one `GET` of the connection's base URL)
//! connections can be tested. `POST …/defaults` creates gust's default connections.

use std::time::Duration;

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    Json,
};
use gust_shared::{
    connections::Connection,
    db::{
        self,
        connection_tests::{ConnectionTestError, ConnectionTestRow},
        connections::ConnectionRow,
    },
    settings::TestConnection,
};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::connections::{
    body_of, connection_error, connection_to_test, create_error, new_connection, stored_changes, ConnectionBody,
};
use crate::{error::ApiError, extract::ApiJson, AppState};

/// Longest a test may take before it counts as failed.
const TEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The header `GET …/enqueue-test` takes the token in (Airflow's).
const TOKEN_HEADER: &str = "Airflow-Connection-Test-Token";

/// Airflow's `ConnectionTestResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ConnectionTestResponse {
    /// Whether the connection works.
    status: bool,
    /// What the test found.
    message: String,
}

/// Airflow's `ConnectionTestQueuedResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ConnectionTestQueuedResponse {
    /// Send it as `Airflow-Connection-Test-Token` to `GET …/enqueue-test`.
    token: String,
    connection_id: String,
    state: String,
}

/// Airflow's `AsyncConnectionTestResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AsyncConnectionTestResponse {
    token: String,
    connection_id: String,
    /// `pending`, `running`, `success` or `failed`.
    state: String,
    result_message: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
}

impl From<ConnectionTestRow> for AsyncConnectionTestResponse {
    fn from(row: ConnectionTestRow) -> Self {
        Self {
            token: row.token,
            connection_id: row.connection_id,
            state: row.state,
            result_message: row.result_message,
            created_at: row.created_at,
        }
    }
}

/// Airflow's `ConnectionTestRequestBody`, for the OpenAPI document: a
/// [`ConnectionBody`] with `commit_on_success`, `executor` and `queue`.
#[derive(ToSchema)]
#[allow(dead_code)] // never constructed: it exists for its `ToSchema` impl
pub(crate) struct ConnectionTestRequestBody {
    #[schema(max_length = 200, pattern = r"^[\w.-]+$")]
    connection_id: String,
    conn_type: String,
    description: Option<String>,
    host: Option<String>,
    login: Option<String>,
    schema: Option<String>,
    port: Option<i32>,
    password: Option<String>,
    extra: Option<String>,
    #[schema(schema_with = crate::openapi::only_null)]
    team_name: Option<String>,
    /// Save the connection (create or update it) when the test succeeds.
    #[schema(default = false)]
    commit_on_success: bool,
    /// gust runs tests in the webapi: only `null`.
    #[schema(schema_with = crate::openapi::only_null)]
    executor: Option<String>,
    /// gust runs tests in the webapi: only `null`.
    #[schema(schema_with = crate::openapi::only_null)]
    queue: Option<String>,
}

/// `POST /api/v2/connections/test`: tests the connection the body describes (with the stored
/// connection of its id filling in masked or left-out fields) and says whether it works.
#[utoipa::path(post, path = "/api/v2/connections/test", tag = "Connection", operation_id = "test_connection", request_body = ConnectionBody, responses((status = 200, body = ConnectionTestResponse), (status = 403, description = "GUST__WEBAPI__TEST_CONNECTION is not Enabled")))]
pub(crate) async fn test_connection(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ConnectionBody>,
) -> Result<Json<ConnectionTestResponse>, ApiError> {
    check_enabled(&state)?;
    let conn = resolved(&state, body).await?;
    let (status, message) = run_test(&conn).await;
    Ok(Json(ConnectionTestResponse { status, message }))
}

/// `POST /api/v2/connections/enqueue-test`: 202 with a token; the test runs in the background.
#[utoipa::path(post, path = "/api/v2/connections/enqueue-test", tag = "Connection", operation_id = "enqueue_connection_test", request_body = ConnectionTestRequestBody, responses((status = 202, body = ConnectionTestQueuedResponse), (status = 403, description = "GUST__WEBAPI__TEST_CONNECTION is not Enabled"), (status = 409, description = "A test of this connection is still running")))]
pub(crate) async fn enqueue_connection_test(
    State(state): State<AppState>,
    ApiJson(mut body): ApiJson<Map<String, Value>>,
) -> Result<(StatusCode, Json<ConnectionTestQueuedResponse>), ApiError> {
    check_enabled(&state)?;
    let commit_on_success = match body.remove("commit_on_success") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(commit)) => commit,
        Some(other) => {
            return Err(ApiError::with_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("`commit_on_success` must be true or false, got {other}"),
            ))
        }
    };
    for field in ["executor", "queue"] {
        if let Some(value) = body.remove(field).filter(|v| !v.is_null()) {
            return Err(ApiError::with_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("`{field}` ({value}) cannot be chosen: gust runs connection tests in the webapi; leave it out or null"),
            ));
        }
    }
    let body: ConnectionBody = serde_json::from_value(Value::Object(body))
        .map_err(|e| ApiError::with_status(StatusCode::UNPROCESSABLE_ENTITY, format!("invalid body: {e}")))?;
    let conn = resolved(&state, body).await?;
    let token = hex::encode(rand::random::<[u8; 24]>());
    let db = state.db().await?;
    let row =
        db::connection_tests::enqueue(&db, &token, &conn.conn_id, commit_on_success).await.map_err(|e| match e {
            active @ ConnectionTestError::Active(_) => ApiError::Conflict(active.to_string()),
            ConnectionTestError::Db(db) => ApiError::Db(db),
        })?;
    drop(db);
    tokio::spawn(run_in_background(state.clone(), token.clone(), conn, commit_on_success));
    tracing::info!(connection_id = %row.connection_id, "connection test enqueued through the API");
    Ok((
        StatusCode::ACCEPTED,
        Json(ConnectionTestQueuedResponse { token: row.token, connection_id: row.connection_id, state: row.state }),
    ))
}

/// `GET /api/v2/connections/enqueue-test`: the state of the test whose token the `Airflow-Connection-Test-Token` header has.
#[utoipa::path(get, path = "/api/v2/connections/enqueue-test", tag = "Connection", operation_id = "get_connection_test", params(("Airflow-Connection-Test-Token" = String, Header, description = "The token POST …/enqueue-test answered")), responses((status = 200, body = AsyncConnectionTestResponse), (status = 404, description = "No test has this token")))]
pub(crate) async fn get_connection_test(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<AsyncConnectionTestResponse>, ApiError> {
    let token = headers.get(TOKEN_HEADER).and_then(|v| v.to_str().ok()).ok_or_else(|| {
        ApiError::with_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("send the token POST /api/v2/connections/enqueue-test answered in the `{TOKEN_HEADER}` header"),
        )
    })?;
    let db = state.db().await?;
    let row = db::connection_tests::get(&db, token)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("No connection test found for token: `{token}`")))?;
    Ok(Json(row.into()))
}

/// `POST /api/v2/connections/defaults`: creates gust's default connections (`postgres_default`,
/// `http_default`) that do not exist yet; existing ones are left alone. 204.
#[utoipa::path(post, path = "/api/v2/connections/defaults", tag = "Connection", operation_id = "create_default_connections", responses((status = 204, description = "The missing default connections were created")))]
pub(crate) async fn create_default_connections(State(state): State<AppState>) -> Result<StatusCode, ApiError> {
    let db = state.db().await?;
    for row in default_connections() {
        if db::connections::create_if_missing(&db, &row).await? {
            tracing::info!(connection_id = %row.connection_id, "default connection created through the API");
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// gust's default connections: its operators' defaults, without secrets.
fn default_connections() -> [ConnectionRow; 2] {
    [
        ConnectionRow {
            connection_id: "postgres_default".into(),
            conn_type: "postgres".into(),
            description: Some("PostgreSQL on this host (the sql operator's and sql_sensor's example)".into()),
            host: Some("localhost".into()),
            login: Some("postgres".into()),
            schema: Some("postgres".into()),
            port: Some(5432),
            ..Default::default()
        },
        ConnectionRow {
            connection_id: "http_default".into(),
            conn_type: "https".into(),
            description: Some("httpbin, for trying the http operator and http_sensor".into()),
            host: Some("www.httpbin.org".into()),
            ..Default::default()
        },
    ]
}

fn check_enabled(state: &AppState) -> Result<(), ApiError> {
    if state.settings.webapi.test_connection == TestConnection::Enabled {
        return Ok(());
    }
    Err(ApiError::Forbidden(
        "Testing connections is disabled in gust's configuration. Contact your deployment admin to enable it \
         (GUST__WEBAPI__TEST_CONNECTION=Enabled)."
            .into(),
    ))
}

/// The connection to test: the body, with the stored connection of its id (decrypted) filling in.
async fn resolved(state: &AppState, body: ConnectionBody) -> Result<Connection, ApiError> {
    let Some(id) = body.id().map(str::to_string) else { return new_connection(body) };
    let db = state.db().await?;
    let stored = match db::connections::get(&db, &id).await? {
        Some(row) => Some(Connection::decrypt(row, state.secrets.as_deref()).map_err(connection_error)?),
        None => None,
    };
    connection_to_test(body, stored)
}

/// Runs an enqueued test and records its outcome; saves the connection when asked and it works.
async fn run_in_background(state: AppState, token: String, conn: Connection, commit_on_success: bool) {
    let outcome = async {
        db::connection_tests::set_state(&state.db().await?, &token, "running", None).await?;
        let (works, mut message) = run_test(&conn).await;
        if works && commit_on_success {
            message = match save(&state, conn).await {
                Ok(saved) => format!("{message}; {saved}"),
                Err(error) => format!("{message}; but saving it failed: {}", error.status_and_detail().1),
            };
        }
        let final_state = if works { "success" } else { "failed" };
        db::connection_tests::set_state(&state.db().await?, &token, final_state, Some(&message)).await?;
        Ok::<_, ApiError>(())
    };
    if let Err(error) = outcome.await {
        tracing::warn!(%error, "could not record the outcome of a connection test");
    }
}

/// Creates the tested connection, or updates the stored one to it.
async fn save(state: &AppState, conn: Connection) -> Result<&'static str, ApiError> {
    let id = conn.conn_id.clone();
    let secrets = state.secrets.as_deref();
    let db = state.db().await?;
    if db::connections::get(&db, &id).await?.is_some() {
        let changes = stored_changes(&id, &[], body_of(conn), secrets)?;
        db::connections::update(&db, &id, &changes).await?;
        return Ok("the connection was updated");
    }
    let row = conn.encrypt(secrets).map_err(connection_error)?;
    db::connections::create(&db, &row).await.map_err(create_error)?;
    Ok("the connection was created")
}

/// Tests `conn` within [`TEST_TIMEOUT`]: whether it works, and what was found.
async fn run_test(conn: &Connection) -> (bool, String) {
    let test = async {
        match conn.conn_type.as_str() {
            "postgres" | "postgresql" => test_postgres(conn).await,
            "http" | "https" => test_http(conn).await,
            other => Err(format!(
                "gust can test postgres and http connections; `{other}` connections can only be tried by a task"
            )),
        }
    };
    match tokio::time::timeout(TEST_TIMEOUT, test).await {
        Ok(Ok(message)) => (true, message),
        Ok(Err(message)) => (false, message),
        Err(_) => (false, format!("no answer within {}s", TEST_TIMEOUT.as_secs())),
    }
}

/// Connects as the sql operator does and runs `SELECT 1`.
async fn test_postgres(conn: &Connection) -> Result<String, String> {
    let mut config = tokio_postgres::Config::new();
    let host = conn.host.as_deref().unwrap_or("localhost");
    let port = conn.port.and_then(|p| u16::try_from(p).ok()).unwrap_or(5432);
    config.host(host).port(port).application_name("gust-connection-test").connect_timeout(TEST_TIMEOUT);
    if let Some(login) = &conn.login {
        config.user(login);
    }
    if let Some(password) = &conn.password {
        config.password(password);
    }
    if let Some(db) = &conn.schema {
        config.dbname(db);
    }
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.map_err(|e| {
        format!(
            "cannot connect to {host}:{port}: {}",
            e.as_db_error().map_or(e.to_string(), |d| d.message().to_string())
        )
    })?;
    let driver = tokio::spawn(connection);
    let answer = client.query_one("SELECT 1", &[]).await.map_err(|e| format!("SELECT 1 failed: {e}"));
    driver.abort();
    answer.map(|_| format!("Connection successfully tested: connected to {host}:{port} and ran SELECT 1"))
}

/// Sends one `GET` to the connection's base URL (as the http operator builds it); any answer counts.
async fn test_http(conn: &Connection) -> Result<String, String> {
    let host = conn.host.as_deref().filter(|h| !h.is_empty()).ok_or("the connection has no host")?;
    let url = if host.contains("://") {
        host.to_string()
    } else {
        let scheme = if conn.conn_type == "https" { "https" } else { "http" };
        let port = conn.port.map(|p| format!(":{p}")).unwrap_or_default();
        let base = conn.schema.as_deref().map(|s| format!("/{}", s.trim_matches('/'))).unwrap_or_default();
        format!("{scheme}://{host}{port}{base}/")
    };
    let client = reqwest::Client::builder()
        .timeout(TEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let mut request = client.get(&url);
    if let Some(login) = &conn.login {
        request = request.basic_auth(login, conn.password.as_deref());
    }
    let response = request.send().await.map_err(|e| format!("GET {url} failed: {}", error_chain(&e)))?;
    let status = response.status();
    if status.is_server_error() {
        return Err(format!("GET {url} answered {status}"));
    }
    Ok(format!("Connection successfully tested: GET {url} answered {status}"))
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
