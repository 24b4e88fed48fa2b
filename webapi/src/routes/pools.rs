//! `/api/v2/pools`: list, read, create, change and delete pools (Airflow's shapes).

use axum::{extract::State, http::StatusCode, Json};
use gust_shared::{
    dag::DEFAULT_POOL,
    db::{
        self,
        pools::{PoolError, PoolFields, PoolRow},
    },
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    bulk::{self, bulk_body_schema, BulkBody, BulkResponse, BulkService},
    input_checks::{checked, NoTeam},
    pagination::{order_by_param, OrderParams, PageParams},
};
use crate::{
    error::ApiError,
    extract::{ApiJson, ApiPath, ApiQuery},
    AppState,
};

/// Airflow's `PoolResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PoolResponse {
    name: String,
    slots: i32,
    description: Option<String>,
    include_deferred: bool,
    occupied_slots: i64,
    running_slots: i64,
    queued_slots: i64,
    scheduled_slots: i64,
    open_slots: i64,
    deferred_slots: i64,
    /// Airflow's multi-team field; always `null` (gust has no teams).
    team_name: Option<String>,
}

/// Airflow's `PoolCollectionResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PoolCollection {
    pools: Vec<PoolResponse>,
    total_entries: i64,
}

impl From<PoolRow> for PoolResponse {
    fn from(pool: PoolRow) -> Self {
        Self {
            occupied_slots: pool.occupied_slots(),
            open_slots: pool.open_slots(),
            running_slots: pool.running_slots,
            queued_slots: pool.queued_slots,
            scheduled_slots: pool.scheduled_slots,
            deferred_slots: pool.deferred_slots,
            name: pool.name,
            slots: pool.slots,
            description: pool.description,
            include_deferred: pool.include_deferred,
            team_name: None,
        }
    }
}

/// Airflow's `PoolBody`: what `POST /pools` takes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PoolBody {
    /// 1-256 letters, digits, `_`, `-` or `.`.
    #[serde(deserialize_with = "valid_name")]
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,256}$")]
    name: String,
    #[serde(deserialize_with = "slots_in_range")]
    #[schema(minimum = 0, maximum = 2147483647)]
    slots: i64,
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
    #[serde(default)]
    #[schema(default = false)]
    include_deferred: bool,
    /// Airflow's multi-team field; gust has no teams, so only `null` is accepted.
    #[serde(default, rename = "team_name")]
    #[schema(schema_with = crate::openapi::only_null)]
    _team_name: Option<NoTeam>,
}

/// Airflow's `PoolPatchBody`: every field optional; `description: null` clears it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PoolPatchBody {
    #[serde(default, alias = "pool")]
    name: Option<String>,
    #[serde(default, deserialize_with = "optional_slots_in_range")]
    #[schema(minimum = 0, maximum = 2147483647)]
    slots: Option<i64>,
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
    #[serde(default)]
    include_deferred: Option<bool>,
    /// Airflow's multi-team field; gust has no teams, so only `null` is accepted.
    #[serde(default, rename = "team_name")]
    #[schema(schema_with = crate::openapi::only_null)]
    _team_name: Option<NoTeam>,
}

crate::extract::update_mask_param!(PoolMask, ["name", "pool", "slots", "description", "include_deferred"]);

/// Query of `PATCH /pools/{pool_name}`.
#[derive(Debug, Deserialize)]
pub(crate) struct PatchParams {
    /// Fields of the body to apply, repeated or comma-separated; all present fields when absent.
    #[serde(default)]
    update_mask: Vec<String>,
}

order_by_param!(PoolOrder, db::pools::ORDER_FIELDS);

/// `GET /api/v2/pools`
#[utoipa::path(get, path = "/api/v2/pools", tag = "Pool", operation_id = "get_pools", params(PageParams, PoolOrder), responses((status = 200, body = PoolCollection)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<PageParams>,
    ApiQuery(order): ApiQuery<OrderParams>,
) -> Result<Json<PoolCollection>, ApiError> {
    let page = page.page()?;
    let order = order.sql(db::pools::ORDER_FIELDS, "name ASC", "name")?;
    let db = state.db().await?;
    let (pools, total_entries) = db::pools::list(&db, page.limit, page.offset, &order).await?;
    Ok(Json(PoolCollection { pools: pools.into_iter().map(PoolResponse::from).collect(), total_entries }))
}

/// `GET /api/v2/pools/{pool_name}`
#[utoipa::path(get, path = "/api/v2/pools/{pool_name}", tag = "Pool", operation_id = "get_pool", params(("pool_name" = String, Path, description = "The pool's name")), responses((status = 200, body = PoolResponse)))]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<PoolResponse>, ApiError> {
    let db = state.db().await?;
    let pool = db::pools::get(&db, &name).await?.ok_or_else(|| pool_not_found(&name))?;
    Ok(Json(pool.into()))
}

/// `POST /api/v2/pools`: 201 with the new pool, 409 when the name is taken.
#[utoipa::path(post, path = "/api/v2/pools", tag = "Pool", operation_id = "post_pool", request_body = PoolBody, responses((status = 201, body = PoolResponse), (status = 409, description = "A pool with this name exists")))]
pub(crate) async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<PoolBody>,
) -> Result<(StatusCode, Json<PoolResponse>), ApiError> {
    let fields = new_pool_fields(&body)?;
    let db = state.db().await?;
    let pool = db::pools::create(&db, &body.name, &fields).await.map_err(pool_error)?;
    tracing::info!(pool = %pool.name, slots = pool.slots, "pool created through the API");
    Ok((StatusCode::CREATED, Json(pool.into())))
}

/// `PATCH /api/v2/pools/{pool_name}`: changes the fields in `update_mask`, or every field the body has.
#[utoipa::path(patch, path = "/api/v2/pools/{pool_name}", tag = "Pool", operation_id = "patch_pool", params(("pool_name" = String, Path, description = "The pool's name"), PoolMask), request_body = PoolPatchBody, responses((status = 200, body = PoolResponse)))]
pub(crate) async fn patch(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(params): ApiQuery<PatchParams>,
    ApiJson(body): ApiJson<PoolPatchBody>,
) -> Result<Json<PoolResponse>, ApiError> {
    let fields = patch_fields(&name, &params.update_mask, body)?;
    let db = state.db().await?;
    let pool = db::pools::update(&db, &name, &fields).await?.ok_or_else(|| pool_not_found(&name))?;
    tracing::info!(pool = %pool.name, slots = pool.slots, "pool changed through the API");
    Ok(Json(pool.into()))
}

/// `DELETE /api/v2/pools/{pool_name}`: 204; `default_pool` cannot be deleted (400).
#[utoipa::path(delete, path = "/api/v2/pools/{pool_name}", tag = "Pool", operation_id = "delete_pool", params(("pool_name" = String, Path, description = "The pool's name")), responses((status = 204, description = "Deleted")))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let db = state.db().await?;
    if !db::pools::delete(&db, &name).await.map_err(pool_error)? {
        return Err(pool_not_found(&name));
    }
    tracing::info!(pool = %name, "pool deleted through the API");
    Ok(StatusCode::NO_CONTENT)
}

bulk_body_schema!(PoolBulkBody, PoolBody);

/// `PATCH /api/v2/pools`: creates, changes and deletes pools in one transaction (Airflow's bulk body).
#[utoipa::path(patch, path = "/api/v2/pools", tag = "Pool", operation_id = "bulk_pools", request_body = PoolBulkBody, responses((status = 200, body = BulkResponse)))]
pub(crate) async fn bulk(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<BulkBody<PoolBody>>,
) -> Result<Json<BulkResponse>, ApiError> {
    let mut db = state.db().await?;
    let response = bulk::run(&PoolBulk, &mut db, body).await?;
    tracing::info!(?response, "pools changed in bulk through the API");
    Ok(Json(response))
}

/// Pools for [`bulk::run`].
struct PoolBulk;

impl BulkService for PoolBulk {
    type Entity = PoolBody;
    const PLURAL: &'static str = "pools";
    const KEY_FIELD: &'static str = "name";

    fn key(entity: &PoolBody) -> Result<String, ApiError> {
        Ok(entity.name.clone())
    }

    async fn existing(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        keys: &[String],
    ) -> Result<std::collections::HashSet<String>, ApiError> {
        Ok(db::pools::existing(tx, keys).await?.into_iter().collect())
    }

    async fn create(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        entity: PoolBody,
        exists: bool,
    ) -> Result<(), ApiError> {
        if exists {
            return self.update(tx, entity, &[]).await;
        }
        let fields = new_pool_fields(&entity)?;
        db::pools::create(tx, &entity.name, &fields).await.map_err(pool_error)?;
        Ok(())
    }

    async fn update(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        entity: PoolBody,
        update_mask: &[String],
    ) -> Result<(), ApiError> {
        let name = entity.name.clone();
        let fields = patch_fields(&name, update_mask, as_patch(entity))?;
        db::pools::update(tx, &name, &fields).await?.ok_or_else(|| pool_not_found(&name))?;
        Ok(())
    }

    async fn delete(&self, tx: &deadpool_postgres::Transaction<'_>, key: &str) -> Result<(), ApiError> {
        db::pools::delete(tx, key).await.map_err(pool_error)?;
        Ok(())
    }
}

/// The fields of a new pool, checked (its name was checked as the body was read).
fn new_pool_fields(body: &PoolBody) -> Result<PoolFields, ApiError> {
    Ok(PoolFields {
        slots: Some(checked_slots(body.slots)?),
        description: Some(body.description.clone().flatten()),
        include_deferred: Some(body.include_deferred),
    })
}

/// A `PoolBody` as the `PoolPatchBody` of its own pool: every field it has.
fn as_patch(body: PoolBody) -> PoolPatchBody {
    PoolPatchBody {
        name: Some(body.name),
        slots: Some(body.slots),
        description: body.description,
        include_deferred: Some(body.include_deferred),
        _team_name: body._team_name,
    }
}

/// The changes a PATCH asks for, checked.
fn patch_fields(name: &str, update_mask: &[String], body: PoolPatchBody) -> Result<PoolFields, ApiError> {
    const FIELDS: [&str; 4] = ["name", "slots", "description", "include_deferred"];
    let mask = Some(crate::extract::mask_fields(update_mask)).filter(|fields| !fields.is_empty());
    if let Some(field) = mask.iter().flatten().find(|field| !FIELDS.contains(field) && **field != "pool") {
        return Err(ApiError::BadRequest(format!(
            "update_mask names `{field}`, which is not a pool field; use {}",
            FIELDS.join(", ")
        )));
    }
    let wanted = |field: &str| mask.as_ref().is_none_or(|mask| mask.contains(&field));
    if let Some(new_name) = body.name.as_deref().filter(|_| wanted("name") || wanted("pool")) {
        if new_name != name {
            return Err(ApiError::BadRequest(format!(
                "pools cannot be renamed (`{name}` to `{new_name}`); create `{new_name}` and delete `{name}`"
            )));
        }
    }
    let fields = PoolFields {
        slots: body.slots.filter(|_| wanted("slots")).map(checked_slots).transpose()?,
        description: body.description.filter(|_| wanted("description")),
        include_deferred: body.include_deferred.filter(|_| wanted("include_deferred")),
    };
    if name == DEFAULT_POOL && fields.description.is_some() {
        return Err(ApiError::BadRequest(
            "only `slots` and `include_deferred` of `default_pool` can be changed".into(),
        ));
    }
    Ok(fields)
}

/// `slots`, refused while the body is read unless [`checked_slots`] takes it.
fn slots_in_range<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    checked(deserializer, |slots: &i64| checked_slots(*slots).map(drop))
}

/// An optional `slots`, refused while the body is read unless [`checked_slots`] takes it.
fn optional_slots_in_range<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    checked(deserializer, |slots: &Option<i64>| slots.map_or(Ok(()), |slots| checked_slots(slots).map(drop)))
}

fn checked_slots(slots: i64) -> Result<i32, ApiError> {
    i32::try_from(slots).ok().filter(|slots| *slots >= 0).ok_or_else(|| {
        ApiError::BadRequest(format!("`slots` must be a whole number from 0 to {}, got {slots}", i32::MAX))
    })
}

/// A body's pool `name`, refused while the body is read unless [`check_name`] takes it.
fn valid_name<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    checked(deserializer, |name: &String| check_name(name))
}

fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 256
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            ["body", "name"],
            "string_pattern_mismatch",
            format!("pool name `{name}` must be 1-256 characters of letters, digits, '_', '-' or '.'"),
        ))
    }
}

fn pool_not_found(name: &str) -> ApiError {
    ApiError::NotFound(format!("pool `{name}` not found"))
}

fn pool_error(error: PoolError) -> ApiError {
    match error {
        duplicate @ PoolError::Duplicate(_) => ApiError::Conflict(duplicate.to_string()),
        default @ PoolError::DefaultPool => ApiError::BadRequest(default.to_string()),
        PoolError::Db(db) => ApiError::Db(db),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: serde_json::Value) -> PoolPatchBody {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn without_update_mask_every_field_in_the_body_changes() {
        let fields = patch_fields("etl", &[], body(serde_json::json!({"slots": 3, "description": null}))).unwrap();
        assert_eq!(fields, PoolFields { slots: Some(3), description: Some(None), include_deferred: None });
    }

    #[test]
    fn an_update_mask_limits_the_change_to_the_fields_it_names() {
        let all = serde_json::json!({"slots": 3, "description": "x", "include_deferred": true});
        let fields = patch_fields("etl", &["slots".into()], body(all)).unwrap();
        assert_eq!(fields, PoolFields { slots: Some(3), description: None, include_deferred: None });
        let error = patch_fields("etl", &["slots,colour".into()], body(serde_json::json!({}))).unwrap_err().to_string();
        assert!(error.contains("`colour`"), "{error}");
    }

    #[test]
    fn negative_slots_a_rename_and_a_default_pool_description_are_refused() {
        let negative = serde_json::from_value::<PoolPatchBody>(serde_json::json!({"slots": -1})).unwrap_err();
        assert!(negative.to_string().contains("`slots` must be a whole number from 0"), "{negative}");
        let rename = patch_fields("etl", &[], body(serde_json::json!({"name": "other"}))).unwrap_err().to_string();
        assert!(rename.contains("cannot be renamed"), "{rename}");
        assert!(patch_fields("etl", &[], body(serde_json::json!({"name": "etl", "slots": 1}))).is_ok());
        let default = patch_fields(DEFAULT_POOL, &[], body(serde_json::json!({"description": "x"}))).unwrap_err();
        assert!(default.to_string().contains("default_pool"), "{default}");
    }

    #[test]
    fn pool_names_follow_the_dag_file_rules() {
        assert!(check_name("gpu-pool_1.a").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("has space").is_err());
    }
}
