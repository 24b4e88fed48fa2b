//! `/api/v2/connections`: list, read, create, change and delete Airflow's
//! Connections. Passwords are stored encrypted (`GUST__SECRETS__KEY`) and never
//! answered: a set password reads `***`, as do the secret fields of `extra`.

use axum::{extract::State, http::StatusCode, Json};
use gust_shared::{
    connections::{check_extra, Connection, ConnectionError},
    db::{
        self,
        connections::{
            ConnectionChanges, ConnectionDbError, ConnectionRow, DEFAULT_ORDER, ORDER_FIELDS, ORDER_TIEBREAK,
        },
    },
    secrets::{is_sensitive, SecretsError, KEY_VARIABLE},
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::pagination::{order_by_param, OrderParams, PageParams};
use crate::{
    error::ApiError,
    extract::{ApiJson, ApiPath, ApiQuery},
    AppState,
};

/// Longest connection id Airflow accepts.
const MAX_ID_CHARS: usize = 200;

/// What a masked value reads as.
const MASK: &str = "***";

/// Airflow's `ConnectionResponse`: `password` is `***` when set, secret `extra` fields too.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ConnectionResponse {
    connection_id: String,
    conn_type: String,
    description: Option<String>,
    host: Option<String>,
    login: Option<String>,
    schema: Option<String>,
    port: Option<i32>,
    /// `***` when a password is set; never the password.
    password: Option<String>,
    /// JSON object text; values of secret-looking fields read `***`.
    extra: Option<String>,
    /// Airflow's multi-team field; always `null`.
    team_name: Option<String>,
}

/// Airflow's `ConnectionCollectionResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ConnectionCollection {
    connections: Vec<ConnectionResponse>,
    total_entries: i64,
}

impl From<ConnectionRow> for ConnectionResponse {
    fn from(row: ConnectionRow) -> Self {
        Self {
            password: row.password_encrypted.as_ref().map(|_| MASK.to_string()),
            extra: row.extra.map(masked_extra),
            connection_id: row.connection_id,
            conn_type: row.conn_type,
            description: row.description,
            host: row.host,
            login: row.login,
            schema: row.schema,
            port: row.port,
            team_name: None,
        }
    }
}

/// Airflow's `ConnectionBody`: what `POST` takes (and `PATCH`, where fields may be left out).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConnectionBody {
    /// Required by `POST`; a `PATCH` may leave it out. Never `null`.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = String, max_length = 200, pattern = r"^[\w.-]+$")]
    connection_id: Option<String>,
    /// The connection's type (`postgres`, `http`, …): not blank; required by `POST`. Never `null`.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = String, min_length = 1, pattern = r"\S")]
    conn_type: Option<String>,
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<String>)]
    host: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<String>)]
    login: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<String>)]
    schema: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<i32>)]
    port: Option<Option<i32>>,
    /// Stored encrypted; never answered.
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<String>)]
    password: Option<Option<String>>,
    /// A JSON object as text; secret-looking fields are stored encrypted.
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<String>)]
    extra: Option<Option<String>>,
    /// Airflow's multi-team field; gust has no teams, so only `null` is accepted.
    #[serde(default)]
    #[schema(schema_with = crate::openapi::only_null)]
    team_name: Option<String>,
}

/// The filter of `GET /connections` (next to `limit`, `offset` and `order_by`).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListFilters {
    connection_id_pattern: Option<String>,
}

crate::extract::update_mask_param!(
    ConnectionMask,
    ["conn_type", "description", "host", "login", "schema", "port", "password", "extra"]
);

/// A body field that may be left out but, when given, is a string and not `null`.
fn not_null<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let value = Option::<String>::deserialize(deserializer)?;
    value.map(Some).ok_or_else(|| serde::de::Error::custom("must be a string, not null (leave the field out instead)"))
}

/// Query of `PATCH /connections/{connection_id}`.
#[derive(Debug, Deserialize)]
pub(crate) struct PatchParams {
    #[serde(default)]
    update_mask: Vec<String>,
}

order_by_param!(ConnectionOrder, &ORDER_FIELDS);

/// `GET /api/v2/connections`
#[utoipa::path(get, path = "/api/v2/connections", tag = "Connection", params(PageParams, ConnectionOrder, ListFilters), responses((status = 200, body = ConnectionCollection)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<PageParams>,
    ApiQuery(order): ApiQuery<OrderParams>,
    ApiQuery(filters): ApiQuery<ListFilters>,
) -> Result<Json<ConnectionCollection>, ApiError> {
    let page = page.page()?;
    let order_by = order.sql(&ORDER_FIELDS, DEFAULT_ORDER, ORDER_TIEBREAK)?;
    let terms = match filters.connection_id_pattern.as_deref() {
        None | Some("~") | Some("") => Vec::new(),
        Some(pattern) => pattern.split('|').map(str::to_string).collect(),
    };
    let db = state.db().await?;
    let (rows, total_entries) = db::connections::list(&db, page.limit, page.offset, &terms, &order_by).await?;
    Ok(Json(ConnectionCollection {
        connections: rows.into_iter().map(ConnectionResponse::from).collect(),
        total_entries,
    }))
}

/// `GET /api/v2/connections/{connection_id}`
#[utoipa::path(get, path = "/api/v2/connections/{connection_id}", tag = "Connection", params(("connection_id" = String, Path, description = "The connection's id")), responses((status = 200, body = ConnectionResponse)))]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ConnectionResponse>, ApiError> {
    let db = state.db().await?;
    let row = db::connections::get(&db, &id).await?.ok_or_else(|| not_found(&id))?;
    Ok(Json(row.into()))
}

/// `POST /api/v2/connections`: 201 with the new connection, 409 when the id is taken,
/// 503 when it has a password or secret extra and `GUST__SECRETS__KEY` is not set.
#[utoipa::path(post, path = "/api/v2/connections", tag = "Connection", request_body = ConnectionBody, responses((status = 201, body = ConnectionResponse), (status = 409, description = "A connection with this id exists"), (status = 503, description = "A secret cannot be stored: GUST__SECRETS__KEY is not set")))]
pub(crate) async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ConnectionBody>,
) -> Result<(StatusCode, Json<ConnectionResponse>), ApiError> {
    check_team(&body)?;
    let id = body.connection_id.ok_or_else(|| ApiError::BadRequest("the body needs a `connection_id`".into()))?;
    check_id(&id)?;
    let conn_type = body
        .conn_type
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| ApiError::BadRequest(format!("the body needs a `conn_type` for connection `{id}`")))?;
    let connection = Connection {
        conn_id: id,
        conn_type,
        description: body.description.flatten(),
        host: body.host.flatten(),
        login: body.login.flatten(),
        password: body.password.flatten(),
        schema: body.schema.flatten(),
        port: body.port.flatten(),
        extra: body.extra.flatten(),
    };
    let row = connection.encrypt(state.secrets.as_deref()).map_err(connection_error)?;
    let db = state.db().await?;
    let row = db::connections::create(&db, &row).await.map_err(|e| match e {
        duplicate @ ConnectionDbError::Duplicate(_) => ApiError::Conflict(duplicate.to_string()),
        ConnectionDbError::Db(db) => ApiError::Db(db),
    })?;
    tracing::info!(connection_id = %row.connection_id, "connection created through the API");
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// `PATCH /api/v2/connections/{connection_id}`: changes the fields in `update_mask`, or every field the body has.
#[utoipa::path(patch, path = "/api/v2/connections/{connection_id}", tag = "Connection", params(("connection_id" = String, Path, description = "The connection's id"), ConnectionMask), request_body = ConnectionBody, responses((status = 200, body = ConnectionResponse)))]
pub(crate) async fn patch(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<PatchParams>,
    ApiJson(body): ApiJson<ConnectionBody>,
) -> Result<Json<ConnectionResponse>, ApiError> {
    let changes = patch_changes(&id, &params.update_mask, body)?;
    let secrets = state.secrets.as_deref();
    let password_encrypted = match changes.password {
        Some(Some(password)) => {
            Some(Some(secrets.ok_or_else(|| connection_error(SecretsError::NoKey.into()))?.encrypt(&password)))
        }
        Some(None) => Some(None),
        None => None,
    };
    let extra = match changes.extra {
        Some(extra) => {
            let probe = Connection { conn_id: id.clone(), extra, ..Default::default() };
            Some(probe.encrypt(secrets).map_err(connection_error)?.extra)
        }
        None => None,
    };
    let stored = ConnectionChanges {
        conn_type: changes.conn_type,
        description: changes.description,
        host: changes.host,
        login: changes.login,
        schema: changes.schema,
        port: changes.port,
        password_encrypted,
        extra,
    };
    let db = state.db().await?;
    let row = db::connections::update(&db, &id, &stored).await?.ok_or_else(|| not_found(&id))?;
    tracing::info!(connection_id = %row.connection_id, "connection changed through the API");
    Ok(Json(row.into()))
}

/// `DELETE /api/v2/connections/{connection_id}`: 204.
#[utoipa::path(delete, path = "/api/v2/connections/{connection_id}", tag = "Connection", params(("connection_id" = String, Path, description = "The connection's id")), responses((status = 204, description = "Deleted")))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let db = state.db().await?;
    if !db::connections::delete(&db, &id).await? {
        return Err(not_found(&id));
    }
    tracing::info!(connection_id = %id, "connection deleted through the API");
    Ok(StatusCode::NO_CONTENT)
}

/// A PATCH's changes in clear (encrypted by the caller), checked.
#[derive(Debug, Default, PartialEq, Eq)]
struct PlainChanges {
    conn_type: Option<String>,
    description: Option<Option<String>>,
    host: Option<Option<String>>,
    login: Option<Option<String>>,
    schema: Option<Option<String>>,
    port: Option<Option<i32>>,
    password: Option<Option<String>>,
    extra: Option<Option<String>>,
}

/// The changes a PATCH asks for, checked.
fn patch_changes(id: &str, update_mask: &[String], body: ConnectionBody) -> Result<PlainChanges, ApiError> {
    const FIELDS: [&str; 8] = ["conn_type", "description", "host", "login", "schema", "port", "password", "extra"];
    check_team(&body)?;
    let mask = crate::extract::mask_fields(update_mask);
    if let Some(field) = mask.iter().find(|field| !FIELDS.contains(field) && **field != "connection_id") {
        return Err(ApiError::BadRequest(format!(
            "update_mask names `{field}`, which is not a connection field that can change; use {}",
            FIELDS.join(", ")
        )));
    }
    if let Some(other) = body.connection_id.as_deref().filter(|other| *other != id) {
        return Err(ApiError::BadRequest(format!(
            "the body's connection_id `{other}` differs from the path's `{id}`; connections cannot be renamed"
        )));
    }
    let wanted = |field: &str| mask.is_empty() || mask.contains(&field);
    let changes = PlainChanges {
        conn_type: body.conn_type.filter(|_| wanted("conn_type")),
        description: body.description.filter(|_| wanted("description")),
        host: body.host.filter(|_| wanted("host")),
        login: body.login.filter(|_| wanted("login")),
        schema: body.schema.filter(|_| wanted("schema")),
        port: body.port.filter(|_| wanted("port")),
        password: body.password.filter(|_| wanted("password")),
        extra: body.extra.filter(|_| wanted("extra")),
    };
    if changes.conn_type.as_deref().is_some_and(|t| t.trim().is_empty()) {
        return Err(ApiError::BadRequest("`conn_type` must not be empty".into()));
    }
    if let Some(extra) = &changes.extra {
        check_extra(id, extra.as_deref()).map_err(connection_error)?;
    }
    Ok(changes)
}

fn check_id(id: &str) -> Result<(), ApiError> {
    let ok_chars = !id.is_empty() && id.chars().all(|c| c.is_alphanumeric() || "_.-".contains(c));
    if !ok_chars {
        return Err(ApiError::BadRequest(format!(
            "connection_id `{id}` must be letters, digits, '_', '.' or '-' (it becomes part of GUST_CONN_<ID>)"
        )));
    }
    let chars = id.chars().count();
    if chars > MAX_ID_CHARS {
        return Err(ApiError::BadRequest(format!(
            "the connection_id has {chars} characters; at most {MAX_ID_CHARS} are allowed"
        )));
    }
    Ok(())
}

fn check_team(body: &ConnectionBody) -> Result<(), ApiError> {
    match &body.team_name {
        Some(team) => Err(ApiError::BadRequest(format!(
            "`team_name` (`{team}`) is not supported: gust has no teams; leave it out or null"
        ))),
        None => Ok(()),
    }
}

/// Stored `extra` as the API shows it: secret-looking fields' values (Fernet tokens) as `***`.
fn masked_extra(extra: String) -> String {
    let Ok(Value::Object(mut fields)) = serde_json::from_str::<Value>(&extra) else { return extra };
    let mut masked = false;
    for (name, value) in fields.iter_mut() {
        if is_sensitive(name) {
            *value = Value::String(MASK.into());
            masked = true;
        }
    }
    if masked {
        Value::Object(fields).to_string()
    } else {
        extra
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("connection `{id}` not found"))
}

fn connection_error(error: ConnectionError) -> ApiError {
    match error {
        ConnectionError::Secrets(SecretsError::NoKey) => ApiError::Unavailable(format!(
            "this connection has a password or secret extra field, and secrets are stored only encrypted: \
             set {KEY_VARIABLE} to a Fernet key (see README, Connections) and restart the webapi"
        )),
        ConnectionError::Db(db) => ApiError::Db(db),
        other => ApiError::BadRequest(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(json: Value) -> ConnectionBody {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn an_update_mask_limits_the_change_to_the_fields_it_names() {
        let all = json!({"connection_id": "c", "host": "h", "password": "p", "port": 5});
        let changes = patch_changes("c", &["host,port".into()], body(all.clone())).unwrap();
        assert_eq!(changes, PlainChanges { host: Some(Some("h".into())), port: Some(Some(5)), ..Default::default() });
        let changes = patch_changes("c", &[], body(all)).unwrap();
        assert_eq!(changes.password, Some(Some("p".into())));
        let error = patch_changes("c", &["colour".into()], body(json!({}))).unwrap_err().to_string();
        assert!(error.contains("`colour`"), "{error}");
        let error = patch_changes("c", &[], body(json!({"connection_id": "d"}))).unwrap_err().to_string();
        assert!(error.contains("cannot be renamed"), "{error}");
        let error = patch_changes("c", &[], body(json!({"extra": "[1]"}))).unwrap_err().to_string();
        assert!(error.contains("JSON object"), "{error}");
    }

    #[test]
    fn secret_extra_fields_are_masked() {
        assert_eq!(masked_extra(r#"{"token": "gAAA", "timeout": 5}"#.into()), r#"{"timeout":5,"token":"***"}"#);
        assert_eq!(masked_extra(r#"{"timeout": 5}"#.into()), r#"{"timeout": 5}"#);
    }

    #[test]
    fn ids_are_word_characters_dots_and_dashes() {
        assert!(check_id("my_db-1.x").is_ok());
        assert!(check_id("").is_err() && check_id("a b").is_err() && check_id(&"a".repeat(201)).is_err());
    }
}
