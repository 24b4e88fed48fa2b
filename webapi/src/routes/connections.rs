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
    secrets::{is_sensitive, Secrets, SecretsError, KEY_VARIABLE},
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{
    bulk::{self, bulk_body_schema, BulkBody, BulkResponse, BulkService},
    input_checks::{is_blank, NoTeam},
    pagination::{order_by_param, OrderParams, PageParams},
};
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
    #[serde(default, deserialize_with = "valid_id")]
    #[schema(value_type = String, max_length = 200, pattern = r"^[\w.-]+$")]
    connection_id: Option<String>,
    /// The connection's type (`postgres`, `http`, …): not blank; required by `POST`. Never `null`.
    #[serde(default, deserialize_with = "not_blank")]
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
    #[serde(default, rename = "team_name")]
    #[schema(schema_with = crate::openapi::only_null)]
    _team_name: Option<NoTeam>,
}

impl ConnectionBody {
    /// The `connection_id` the body names, if any.
    pub(crate) fn id(&self) -> Option<&str> {
        self.connection_id.as_deref()
    }
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

/// A `connection_id`, refused while the body is read when null or not what [`check_id`] takes.
fn valid_id<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let id = not_null(deserializer)?;
    if let Some(id) = &id {
        check_id(id).map_err(|error| serde::de::Error::custom(error.to_string()))?;
    }
    Ok(id)
}

/// A `conn_type`, refused while the body is read when null or blank.
fn not_blank<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let conn_type = not_null(deserializer)?;
    if conn_type.as_deref().is_some_and(is_blank) {
        return Err(serde::de::Error::custom("`conn_type` must not be blank; name the type, e.g. postgres"));
    }
    Ok(conn_type)
}

/// Query of `PATCH /connections/{connection_id}`.
#[derive(Debug, Deserialize)]
pub(crate) struct PatchParams {
    #[serde(default)]
    update_mask: Vec<String>,
}

order_by_param!(ConnectionOrder, &ORDER_FIELDS);

/// `GET /api/v2/connections`
#[utoipa::path(get, path = "/api/v2/connections", tag = "Connection", operation_id = "get_connections", params(PageParams, ConnectionOrder, ListFilters), responses((status = 200, body = ConnectionCollection)))]
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
#[utoipa::path(get, path = "/api/v2/connections/{connection_id}", tag = "Connection", operation_id = "get_connection", params(("connection_id" = String, Path, description = "The connection's id")), responses((status = 200, body = ConnectionResponse)))]
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
#[utoipa::path(post, path = "/api/v2/connections", tag = "Connection", operation_id = "post_connection", request_body = ConnectionBody, responses((status = 201, body = ConnectionResponse), (status = 409, description = "A connection with this id exists"), (status = 503, description = "A secret cannot be stored: GUST__SECRETS__KEY is not set")))]
pub(crate) async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ConnectionBody>,
) -> Result<(StatusCode, Json<ConnectionResponse>), ApiError> {
    let row = new_connection(body)?.encrypt(state.secrets.as_deref()).map_err(connection_error)?;
    let db = state.db().await?;
    let row = db::connections::create(&db, &row).await.map_err(create_error)?;
    tracing::info!(connection_id = %row.connection_id, "connection created through the API");
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// `PATCH /api/v2/connections/{connection_id}`: changes the fields in `update_mask`, or every field the body has.
#[utoipa::path(patch, path = "/api/v2/connections/{connection_id}", tag = "Connection", operation_id = "patch_connection", params(("connection_id" = String, Path, description = "The connection's id"), ConnectionMask), request_body = ConnectionBody, responses((status = 200, body = ConnectionResponse)))]
pub(crate) async fn patch(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<PatchParams>,
    ApiJson(body): ApiJson<ConnectionBody>,
) -> Result<Json<ConnectionResponse>, ApiError> {
    let stored = stored_changes(&id, &params.update_mask, body, state.secrets.as_deref())?;
    let db = state.db().await?;
    let row = db::connections::update(&db, &id, &stored).await?.ok_or_else(|| not_found(&id))?;
    tracing::info!(connection_id = %row.connection_id, "connection changed through the API");
    Ok(Json(row.into()))
}

bulk_body_schema!(ConnectionBulkBody, ConnectionBody);

/// `PATCH /api/v2/connections`: creates, changes and deletes connections in one transaction
/// (Airflow's bulk body); secrets are encrypted as by the single-connection routes.
#[utoipa::path(patch, path = "/api/v2/connections", tag = "Connection", operation_id = "bulk_connections", request_body = ConnectionBulkBody, responses((status = 200, body = BulkResponse)))]
pub(crate) async fn bulk(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<BulkBody<ConnectionBody>>,
) -> Result<Json<BulkResponse>, ApiError> {
    let mut db = state.db().await?;
    let response = bulk::run(&ConnectionBulk { secrets: state.secrets.as_deref() }, &mut db, body).await?;
    tracing::info!(?response, "connections changed in bulk through the API");
    Ok(Json(response))
}

/// Connections for [`bulk::run`], with the keys that encrypt their secrets.
struct ConnectionBulk<'a> {
    secrets: Option<&'a Secrets>,
}

impl BulkService for ConnectionBulk<'_> {
    type Entity = ConnectionBody;
    const PLURAL: &'static str = "connections";
    const KEY_FIELD: &'static str = "connection_id";

    fn key(entity: &ConnectionBody) -> Result<String, ApiError> {
        entity
            .connection_id
            .clone()
            .ok_or_else(|| ApiError::BadRequest("every connection in a bulk action needs a `connection_id`".into()))
    }

    async fn existing(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        keys: &[String],
    ) -> Result<std::collections::HashSet<String>, ApiError> {
        Ok(db::connections::existing(tx, keys).await?.into_iter().collect())
    }

    async fn create(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        entity: ConnectionBody,
        exists: bool,
    ) -> Result<(), ApiError> {
        if exists {
            return self.update(tx, entity, &[]).await;
        }
        let row = new_connection(entity)?.encrypt(self.secrets).map_err(connection_error)?;
        db::connections::create(tx, &row).await.map_err(create_error)?;
        Ok(())
    }

    async fn update(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        entity: ConnectionBody,
        update_mask: &[String],
    ) -> Result<(), ApiError> {
        let id = Self::key(&entity)?;
        let stored = stored_changes(&id, update_mask, entity, self.secrets)?;
        db::connections::update(tx, &id, &stored).await?.ok_or_else(|| not_found(&id))?;
        Ok(())
    }

    async fn delete(&self, tx: &deadpool_postgres::Transaction<'_>, key: &str) -> Result<(), ApiError> {
        db::connections::delete(tx, key).await?;
        Ok(())
    }
}

/// A new connection from a `POST` body, checked, in clear.
pub(crate) fn new_connection(body: ConnectionBody) -> Result<Connection, ApiError> {
    let id = body
        .connection_id
        .ok_or_else(|| ApiError::invalid(["body", "connection_id"], "missing", "the body needs a `connection_id`"))?;
    let conn_type = body.conn_type.filter(|t| !is_blank(t)).ok_or_else(|| {
        ApiError::invalid(
            ["body", "conn_type"],
            "missing",
            format!("the body needs a `conn_type` for connection `{id}`"),
        )
    })?;
    Ok(Connection {
        conn_id: id,
        conn_type,
        description: body.description.flatten(),
        host: body.host.flatten(),
        login: body.login.flatten(),
        password: body.password.flatten(),
        schema: body.schema.flatten(),
        port: body.port.flatten(),
        extra: body.extra.flatten(),
    })
}

/// The connection a test body describes, in clear: the body alone, or with `stored` (the
/// connection of the same id) filling in what the body leaves out or masks (`***`). Stored
/// credentials are only lent to the stored host and port: a body that points elsewhere must
/// bring its own password (Airflow's rule).
pub(crate) fn connection_to_test(body: ConnectionBody, stored: Option<Connection>) -> Result<Connection, ApiError> {
    let Some(mut conn) = stored else { return new_connection(body) };
    let blank = |v: &Option<Option<String>>| v.as_ref().map(|v| v.as_deref().unwrap_or("").to_string());
    let host_moved = blank(&body.host).is_some_and(|host| host != conn.host.clone().unwrap_or_default());
    let port_moved = body.port.is_some_and(|port| port != conn.port);
    let own_password = body.password.as_ref().is_some_and(|p| p.as_deref().is_some_and(|p| !p.is_empty() && p != MASK));
    if (host_moved || port_moved) && !own_password {
        return Err(ApiError::BadRequest(format!(
            "the host or port to test differs from stored connection `{}`; include the password to test with in the body",
            conn.conn_id
        )));
    }
    if let Some(conn_type) = body.conn_type.filter(|t| !is_blank(t)) {
        conn.conn_type = conn_type;
    }
    let keep_masked = |new: Option<Option<String>>, old: &mut Option<String>| match new {
        Some(Some(value)) if value == MASK => {}
        Some(value) => *old = value,
        None => {}
    };
    keep_masked(body.password, &mut conn.password);
    keep_masked(body.host, &mut conn.host);
    keep_masked(body.login, &mut conn.login);
    keep_masked(body.schema, &mut conn.schema);
    keep_masked(body.description, &mut conn.description);
    if let Some(extra) = body.extra {
        check_extra(&conn.conn_id, extra.as_deref()).map_err(connection_error)?;
        conn.extra = merged_extra(extra, conn.extra.take());
    }
    if let Some(port) = body.port {
        conn.port = port;
    }
    Ok(conn)
}

/// A test body's `extra` with its masked (`***`) fields taken from the stored `extra`.
fn merged_extra(new: Option<String>, stored: Option<String>) -> Option<String> {
    let (Some(new), Some(stored)) = (new.as_deref(), stored.as_deref()) else { return new };
    let (Ok(Value::Object(mut fields)), Ok(Value::Object(old))) =
        (serde_json::from_str::<Value>(new), serde_json::from_str::<Value>(stored))
    else {
        return Some(new.to_string());
    };
    for (name, value) in fields.iter_mut() {
        if value.as_str() == Some(MASK) {
            if let Some(old) = old.get(name) {
                *value = old.clone();
            }
        }
    }
    Some(Value::Object(fields).to_string())
}

/// A connection's id and clear fields as a `ConnectionBody` would carry them, for a `POST`.
pub(crate) fn body_of(conn: Connection) -> ConnectionBody {
    ConnectionBody {
        connection_id: Some(conn.conn_id),
        conn_type: Some(conn.conn_type),
        description: Some(conn.description),
        host: Some(conn.host),
        login: Some(conn.login),
        schema: Some(conn.schema),
        port: Some(conn.port),
        password: Some(conn.password),
        extra: Some(conn.extra),
        _team_name: None,
    }
}

pub(crate) fn create_error(error: ConnectionDbError) -> ApiError {
    match error {
        duplicate @ ConnectionDbError::Duplicate(_) => ApiError::Conflict(duplicate.to_string()),
        ConnectionDbError::Db(db) => ApiError::Db(db),
    }
}

/// The stored form (secrets encrypted) of the changes a PATCH of connection `id` asks for, checked.
pub(crate) fn stored_changes(
    id: &str,
    update_mask: &[String],
    body: ConnectionBody,
    secrets: Option<&Secrets>,
) -> Result<ConnectionChanges, ApiError> {
    let changes = patch_changes(id, update_mask, body)?;
    let password_encrypted = match changes.password {
        Some(Some(password)) => {
            Some(Some(secrets.ok_or_else(|| connection_error(SecretsError::NoKey.into()))?.encrypt(&password)))
        }
        Some(None) => Some(None),
        None => None,
    };
    let extra = match changes.extra {
        Some(extra) => {
            let probe = Connection { conn_id: id.to_string(), extra, ..Default::default() };
            Some(probe.encrypt(secrets).map_err(connection_error)?.extra)
        }
        None => None,
    };
    Ok(ConnectionChanges {
        conn_type: changes.conn_type,
        description: changes.description,
        host: changes.host,
        login: changes.login,
        schema: changes.schema,
        port: changes.port,
        password_encrypted,
        extra,
    })
}

/// `DELETE /api/v2/connections/{connection_id}`: 204.
#[utoipa::path(delete, path = "/api/v2/connections/{connection_id}", tag = "Connection", operation_id = "delete_connection", params(("connection_id" = String, Path, description = "The connection's id")), responses((status = 204, description = "Deleted")))]
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
    if changes.conn_type.as_deref().is_some_and(is_blank) {
        return Err(ApiError::invalid(["body", "conn_type"], "string_too_short", "`conn_type` must not be empty"));
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

pub(crate) fn connection_error(error: ConnectionError) -> ApiError {
    match error {
        ConnectionError::Secrets(SecretsError::NoKey) => ApiError::Unavailable(format!(
            "this connection has a password or secret extra field, and secrets are stored only encrypted: \
             set {KEY_VARIABLE} to a Fernet key (see README, Connections) and restart the webapi"
        )),
        ConnectionError::Db(db) => ApiError::Db(db),
        extra @ ConnectionError::BadExtra(_) => ApiError::invalid(["body", "extra"], "value_error", extra.to_string()),
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
