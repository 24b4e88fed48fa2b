//! `/api/v2/variables`: list, read, create, change and delete Airflow's
//! Variables. Values of variables whose key looks secret are answered as `***`.

use axum::{extract::State, http::StatusCode, Json};
use gust_shared::db::{
    self,
    variables::{VariableChanges, VariableError, VariableRow, DEFAULT_ORDER, ORDER_FIELDS, ORDER_TIEBREAK},
};
use gust_shared::secrets::is_sensitive;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{
    bulk::{self, bulk_body_schema, BulkBody, BulkResponse, BulkService},
    input_checks::{checked, is_blank, NoTeam},
    pagination::{order_by_param, OrderParams, PageParams},
};
use crate::{
    error::ApiError,
    extract::{ApiJson, ApiPath, ApiQuery},
    AppState,
};

/// Longest key Airflow accepts.
const MAX_KEY_CHARS: usize = 250;

/// What a masked value reads as.
const MASK: &str = "***";

/// Airflow's `VariableResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VariableResponse {
    key: String,
    value: String,
    description: Option<String>,
    is_encrypted: bool,
    /// Airflow's multi-team field; always `null` (gust has no teams).
    team_name: Option<String>,
}

/// Airflow's `VariableCollectionResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VariableCollection {
    variables: Vec<VariableResponse>,
    total_entries: i64,
}

impl From<VariableRow> for VariableResponse {
    fn from(variable: VariableRow) -> Self {
        Self {
            value: masked_value(&variable.key, variable.value),
            key: variable.key,
            description: variable.description,
            is_encrypted: false,
            team_name: None,
        }
    }
}

/// Airflow's `VariableBody`: what `POST /variables` takes (and `PATCH`, where every field is optional).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VariableBody {
    /// The variable's key: not blank, at most 250 characters (a PATCH may leave it out).
    #[serde(default, deserialize_with = "valid_key")]
    #[schema(value_type = String, max_length = 250, pattern = r"\S")]
    key: Option<String>,
    /// A string (JSON is stored JSON-encoded, as a string).
    #[serde(default, deserialize_with = "string_value")]
    #[schema(value_type = String)]
    value: Option<String>,
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
    /// Airflow's multi-team field; gust has no teams, so only `null` is accepted.
    #[serde(default, rename = "team_name")]
    #[schema(schema_with = crate::openapi::only_null)]
    _team_name: Option<NoTeam>,
}

/// What `POST /variables` takes, for the OpenAPI document: a [`VariableBody`]
/// with its `key` and `value`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // never constructed: it exists for its `ToSchema` impl (whose schema, like serde, takes no other field)
pub(crate) struct VariablePostBody {
    /// At most 250 characters, not only spaces.
    #[schema(max_length = 250, pattern = r"\S")]
    key: String,
    /// A string (JSON is stored JSON-encoded, as a string).
    value: String,
    description: Option<String>,
    /// Airflow's multi-team field; gust has no teams, so only `null` is accepted.
    #[schema(schema_with = crate::openapi::only_null)]
    team_name: Option<String>,
}

/// The filter of `GET /variables` (next to `limit`, `offset` and `order_by`).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListFilters {
    variable_key_pattern: Option<String>,
}

crate::extract::update_mask_param!(VariableMask, ["key", "value", "description"]);

/// Query of `PATCH /variables/{variable_key}`: `update_mask` repeated or comma-separated.
#[derive(Debug, Deserialize)]
pub(crate) struct PatchParams {
    #[serde(default)]
    update_mask: Vec<String>,
}

order_by_param!(VariableOrder, &ORDER_FIELDS);

/// `GET /api/v2/variables`
#[utoipa::path(get, path = "/api/v2/variables", tag = "Variable", operation_id = "get_variables", params(PageParams, VariableOrder, ListFilters), responses((status = 200, body = VariableCollection)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<PageParams>,
    ApiQuery(order): ApiQuery<OrderParams>,
    ApiQuery(filters): ApiQuery<ListFilters>,
) -> Result<Json<VariableCollection>, ApiError> {
    let page = page.page()?;
    let order_by = order.sql(&ORDER_FIELDS, DEFAULT_ORDER, ORDER_TIEBREAK)?;
    let key_contains = key_pattern_terms(filters.variable_key_pattern.as_deref());
    let db = state.db().await?;
    let (variables, total_entries) =
        db::variables::list(&db, page.limit, page.offset, &key_contains, &order_by).await?;
    Ok(Json(VariableCollection {
        variables: variables.into_iter().map(VariableResponse::from).collect(),
        total_entries,
    }))
}

/// `GET /api/v2/variables/{variable_key}`
#[utoipa::path(get, path = "/api/v2/variables/{variable_key}", tag = "Variable", operation_id = "get_variable", params(("variable_key" = String, Path, description = "The variable's key")), responses((status = 200, body = VariableResponse)))]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<VariableResponse>, ApiError> {
    let db = state.db().await?;
    let variable = db::variables::get(&db, &key).await?.ok_or_else(|| not_found(&key))?;
    Ok(Json(variable.into()))
}

/// `POST /api/v2/variables`: 201 with the new variable, 409 when the key is taken.
#[utoipa::path(post, path = "/api/v2/variables", tag = "Variable", operation_id = "post_variable", request_body = VariablePostBody, responses((status = 201, body = VariableResponse), (status = 409, description = "A variable with this key exists")))]
pub(crate) async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<VariableBody>,
) -> Result<(StatusCode, Json<VariableResponse>), ApiError> {
    let variable = new_variable(body)?;
    let db = state.db().await?;
    let variable = db::variables::create(&db, &variable).await.map_err(variable_error)?;
    tracing::info!(key = %variable.key, "variable created through the API");
    Ok((StatusCode::CREATED, Json(variable.into())))
}

/// `PATCH /api/v2/variables/{variable_key}`: changes the fields in `update_mask`, or every field the body has.
#[utoipa::path(patch, path = "/api/v2/variables/{variable_key}", tag = "Variable", operation_id = "patch_variable", params(("variable_key" = String, Path, description = "The variable's key"), VariableMask), request_body = VariableBody, responses((status = 200, body = VariableResponse)))]
pub(crate) async fn patch(
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
    ApiQuery(params): ApiQuery<PatchParams>,
    ApiJson(body): ApiJson<VariableBody>,
) -> Result<Json<VariableResponse>, ApiError> {
    let changes = patch_changes(&key, &params.update_mask, body)?;
    let db = state.db().await?;
    let variable = db::variables::update(&db, &key, &changes).await?.ok_or_else(|| not_found(&key))?;
    tracing::info!(key = %variable.key, "variable changed through the API");
    Ok(Json(variable.into()))
}

/// `DELETE /api/v2/variables/{variable_key}`: 204.
#[utoipa::path(delete, path = "/api/v2/variables/{variable_key}", tag = "Variable", operation_id = "delete_variable", params(("variable_key" = String, Path, description = "The variable's key")), responses((status = 204, description = "Deleted")))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let db = state.db().await?;
    if !db::variables::delete(&db, &key).await? {
        return Err(not_found(&key));
    }
    tracing::info!(%key, "variable deleted through the API");
    Ok(StatusCode::NO_CONTENT)
}

bulk_body_schema!(VariableBulkBody, VariableBody);

/// `PATCH /api/v2/variables`: creates, changes and deletes variables in one transaction (Airflow's bulk body).
#[utoipa::path(patch, path = "/api/v2/variables", tag = "Variable", operation_id = "bulk_variables", request_body = VariableBulkBody, responses((status = 200, body = BulkResponse)))]
pub(crate) async fn bulk(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<BulkBody<VariableBody>>,
) -> Result<Json<BulkResponse>, ApiError> {
    let mut db = state.db().await?;
    let response = bulk::run(&VariableBulk, &mut db, body).await?;
    tracing::info!(?response, "variables changed in bulk through the API");
    Ok(Json(response))
}

/// Variables for [`bulk::run`].
struct VariableBulk;

impl BulkService for VariableBulk {
    type Entity = VariableBody;
    const PLURAL: &'static str = "variables";
    const KEY_FIELD: &'static str = "key";

    fn key(entity: &VariableBody) -> Result<String, ApiError> {
        entity.key.clone().ok_or_else(|| ApiError::BadRequest("every variable in a bulk action needs a `key`".into()))
    }

    async fn existing(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        keys: &[String],
    ) -> Result<std::collections::HashSet<String>, ApiError> {
        Ok(db::variables::existing(tx, keys).await?.into_iter().collect())
    }

    async fn create(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        entity: VariableBody,
        exists: bool,
    ) -> Result<(), ApiError> {
        if exists {
            return self.update(tx, entity, &[]).await;
        }
        db::variables::create(tx, &new_variable(entity)?).await.map_err(variable_error)?;
        Ok(())
    }

    async fn update(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        entity: VariableBody,
        update_mask: &[String],
    ) -> Result<(), ApiError> {
        let key = Self::key(&entity)?;
        let changes = patch_changes(&key, update_mask, entity)?;
        db::variables::update(tx, &key, &changes).await?.ok_or_else(|| not_found(&key))?;
        Ok(())
    }

    async fn delete(&self, tx: &deadpool_postgres::Transaction<'_>, key: &str) -> Result<(), ApiError> {
        db::variables::delete(tx, key).await?;
        Ok(())
    }
}

/// A new variable from a `POST` body, checked (its key was checked as the body was read).
fn new_variable(body: VariableBody) -> Result<VariableRow, ApiError> {
    let key = body.key.ok_or_else(|| ApiError::BadRequest("the body needs a `key`".into()))?;
    let Some(value) = body.value else {
        return Err(ApiError::BadRequest(format!("the body needs a `value` for variable `{key}`")));
    };
    Ok(VariableRow { key, value, description: body.description.flatten() })
}

/// The changes a PATCH asks for, checked.
fn patch_changes(key: &str, update_mask: &[String], body: VariableBody) -> Result<VariableChanges, ApiError> {
    const FIELDS: [&str; 2] = ["value", "description"];
    let mask = crate::extract::mask_fields(update_mask);
    if let Some(field) = mask.iter().find(|field| !FIELDS.contains(field) && **field != "key") {
        return Err(ApiError::BadRequest(format!(
            "update_mask names `{field}`, which is not a variable field that can change; use {}",
            FIELDS.join(", ")
        )));
    }
    if let Some(body_key) = body.key.as_deref().filter(|body_key| *body_key != key) {
        return Err(ApiError::BadRequest(format!(
            "the body's key `{body_key}` differs from the path's `{key}`; variables cannot be renamed"
        )));
    }
    let wanted = |field: &str| mask.is_empty() || mask.contains(&field);
    let value = body.value.filter(|_| wanted("value"));
    let changes = VariableChanges { value, description: body.description.filter(|_| wanted("description")) };
    Ok(changes)
}

/// The value as stored text, read with the body: Airflow stores strings, so
/// anything else must be JSON-encoded first (a 422 showing how).
fn string_value<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::String(text) => Ok(Some(text)),
        other => Err(serde::de::Error::custom(format!(
            "the value must be a string, got {}; to store JSON, send it JSON-encoded as a string (e.g. \"value\": \
             {}) and read it in templates with var.json.<key>",
            kind(&other),
            serde_json::to_string(&other.to_string()).unwrap_or_default()
        ))),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A body's `key`, refused while the body is read unless [`check_key`] takes it.
fn valid_key<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let key: String = checked(deserializer, |key: &String| check_key(key))?;
    Ok(Some(key))
}

fn check_key(key: &str) -> Result<(), ApiError> {
    if is_blank(key) {
        return Err(ApiError::invalid(["body", "key"], "string_too_short", "the variable `key` must not be empty"));
    }
    let chars = key.chars().count();
    if chars > MAX_KEY_CHARS {
        return Err(ApiError::invalid(
            ["body", "key"],
            "string_too_long",
            format!("the variable key has {chars} characters; at most {MAX_KEY_CHARS} are allowed"),
        ));
    }
    Ok(())
}

/// The `|`-separated terms of `variable_key_pattern`; none (match all) for an absent or `~` pattern.
fn key_pattern_terms(pattern: Option<&str>) -> Vec<String> {
    match pattern {
        None | Some("~") | Some("") => Vec::new(),
        Some(pattern) => pattern.split('|').map(str::to_string).collect(),
    }
}

/// Shortest secret value masked where it appears (Airflow's `min_length_masked_secret`):
/// masking every `1` or `yes` in a rendered command would hide more than it protects.
const MIN_MASKED_LEN: usize = 5;

/// The values of variables whose key names a secret, and the passwords and secret
/// extras of connections (decrypted with `keys`; also `GUST_CONN_*` of this process),
/// longest first, to mask wherever they appear (a rendered template that used
/// `var.value` or `conn.<id>.password`).
pub(crate) async fn secret_values(
    db: &impl db::GenericClient,
    keys: Option<&gust_shared::secrets::Secrets>,
) -> Result<Vec<String>, ApiError> {
    let mut secrets: Vec<String> = db::variables::all_values(db)
        .await?
        .into_iter()
        .filter(|(key, value)| is_sensitive(key) && value.chars().count() >= MIN_MASKED_LEN)
        .map(|(_, value)| value)
        .collect();
    for connection in gust_shared::connections::for_templates(db, keys).await?.into_values().flatten() {
        secrets.extend(connection.secret_values().into_iter().filter(|v| v.chars().count() >= MIN_MASKED_LEN));
    }
    secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
    Ok(secrets)
}

/// Replaces every occurrence of a secret in the strings of `value` with `***`.
pub(crate) fn mask_secrets(value: &mut Value, secrets: &[String]) {
    match value {
        Value::String(text) => {
            for secret in secrets {
                if text.contains(secret.as_str()) {
                    *text = text.replace(secret.as_str(), MASK);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| mask_secrets(item, secrets)),
        Value::Object(fields) => fields.values_mut().for_each(|field| mask_secrets(field, secrets)),
        _ => {}
    }
}

/// The value as the API shows it: `***` for a secret key; a JSON object with its
/// secret top-level fields masked; otherwise as stored.
fn masked_value(key: &str, value: String) -> String {
    if is_sensitive(key) {
        return MASK.to_string();
    }
    if !value.trim_start().starts_with('{') {
        return value;
    }
    let Ok(serde_json::Value::Object(mut fields)) = serde_json::from_str::<Value>(&value) else { return value };
    let mut masked = false;
    for (name, field) in fields.iter_mut() {
        if is_sensitive(name) {
            *field = Value::String(MASK.into());
            masked = true;
        }
    }
    if masked {
        Value::Object(fields).to_string()
    } else {
        value
    }
}

fn not_found(key: &str) -> ApiError {
    ApiError::NotFound(format!("variable `{key}` not found"))
}

fn variable_error(error: VariableError) -> ApiError {
    match error {
        duplicate @ VariableError::Duplicate(_) => ApiError::Conflict(duplicate.to_string()),
        VariableError::Db(db) => ApiError::Db(db),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(json: Value) -> VariableBody {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn secrets_are_masked_wherever_they_appear_in_rendered_fields() {
        let mut rendered = json!({"command": "curl -u me:s3cr3t-pw https://x", "env": {"PW": "s3cr3t-pw"}, "n": 1});
        mask_secrets(&mut rendered, &["s3cr3t-pw".to_string()]);
        assert_eq!(rendered, json!({"command": "curl -u me:*** https://x", "env": {"PW": "***"}, "n": 1}));
    }

    #[test]
    fn values_of_secret_keys_and_secret_json_fields_are_masked() {
        assert_eq!(masked_value("db_PASSWORD", "hunter2".into()), "***");
        assert_eq!(masked_value("github_token", "ghp_x".into()), "***");
        assert_eq!(masked_value("bucket", "s3://b".into()), "s3://b");
        assert_eq!(masked_value("conn", r#"{"user": "u", "api_key": "k"}"#.into()), r#"{"api_key":"***","user":"u"}"#);
        assert_eq!(
            masked_value("conn", r#"{"user": "u"}"#.into()),
            r#"{"user": "u"}"#,
            "unchanged when nothing is secret"
        );
        assert_eq!(masked_value("conn", "{not json".into()), "{not json");
    }

    #[test]
    fn a_value_that_is_not_a_string_is_refused_with_the_json_encoded_form() {
        let read = |value: Value| serde_json::from_value::<VariableBody>(json!({"key": "cfg", "value": value}));
        let error = read(json!({"a": 1})).unwrap_err().to_string();
        assert!(error.contains("must be a string, got an object"), "{error}");
        assert!(error.contains(r#""{\"a\":1}""#), "{error}");
        assert_eq!(read(json!("x")).unwrap().value.as_deref(), Some("x"));
    }

    #[test]
    fn keys_must_be_non_empty_and_at_most_250_characters() {
        assert!(check_key("ok").is_ok());
        assert!(check_key("").is_err());
        assert!(check_key(" ").is_err());
        assert!(check_key(&"k".repeat(250)).is_ok());
        assert!(check_key(&"k".repeat(251)).unwrap_err().to_string().contains("251"));
    }

    #[test]
    fn an_update_mask_limits_the_change_to_the_fields_it_names() {
        let all = json!({"key": "k", "value": "v", "description": "d"});
        let changes = patch_changes("k", &["description".into()], body(all.clone())).unwrap();
        assert_eq!(changes, VariableChanges { value: None, description: Some(Some("d".into())) });
        let changes = patch_changes("k", &[], body(all)).unwrap();
        assert_eq!(changes, VariableChanges { value: Some("v".into()), description: Some(Some("d".into())) });
        let error = patch_changes("k", &["value,colour".into()], body(json!({}))).unwrap_err().to_string();
        assert!(error.contains("`colour`"), "{error}");
        let error = patch_changes("k", &[], body(json!({"key": "other"}))).unwrap_err().to_string();
        assert!(error.contains("cannot be renamed"), "{error}");
    }

    #[test]
    fn a_key_pattern_is_split_on_bars_and_tilde_matches_everything() {
        assert_eq!(key_pattern_terms(Some("db|s3")), ["db", "s3"]);
        assert!(key_pattern_terms(Some("~")).is_empty());
        assert!(key_pattern_terms(None).is_empty());
    }
}
