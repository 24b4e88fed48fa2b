//! Airflow's bulk requests (`BulkBody`: create, update and delete actions over
//! many entities) and their answer (`BulkResponse`), run by one loop for every
//! kind of entity: a kind implements [`BulkService`], its `PATCH` handler calls
//! [`run`].
//!
//! The whole request is one transaction, as in Airflow. Each action runs in a
//! savepoint of its own and is all or nothing: when an entity of it fails (a
//! name taken with `action_on_existence: fail`, a key missing with
//! `action_on_non_existence: fail`, a value the single-item route would refuse)
//! the action's changes are undone and its `errors` say why, while the other
//! actions still apply. A failure of the server rather than of the request (the
//! database, or a secret that cannot be encrypted without `GUST__SECRETS__KEY`:
//! a 5xx) fails the whole request and changes nothing.

use std::collections::HashSet;

use deadpool_postgres::Transaction;
use serde::{de::DeserializeOwned, Deserialize, Deserializer, Serialize};
use serde_json::{json, Map, Value};
use utoipa::{
    openapi::{
        schema::{AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type},
        RefOr,
    },
    ToSchema,
};

use crate::error::ApiError;

/// Airflow's `BulkBody[T]`: the actions to run, in order.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, bound = "T: DeserializeOwned")]
pub(crate) struct BulkBody<T> {
    /// The actions, run one after the other in one transaction.
    pub(crate) actions: Vec<BulkAction<T>>,
}

/// One action of a [`BulkBody`], tagged by its `action` field.
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase", bound = "T: DeserializeOwned")]
pub(crate) enum BulkAction<T> {
    /// Airflow's `BulkCreateAction`.
    Create(BulkCreateAction<T>),
    /// Airflow's `BulkUpdateAction`.
    Update(BulkUpdateAction<T>),
    /// Airflow's `BulkDeleteAction`.
    Delete(BulkDeleteAction<T>),
}

/// Airflow's `BulkCreateAction[T]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, bound = "T: DeserializeOwned")]
pub(crate) struct BulkCreateAction<T> {
    /// The entities to create.
    pub(crate) entities: Vec<T>,
    /// What to do when one exists already.
    #[serde(default)]
    pub(crate) action_on_existence: OnExistence,
}

/// Airflow's `BulkUpdateAction[T]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, bound = "T: DeserializeOwned")]
pub(crate) struct BulkUpdateAction<T> {
    /// The entities to change, each naming itself by its key field.
    pub(crate) entities: Vec<T>,
    /// Fields to apply from each entity; every field an entity has when absent.
    #[serde(default)]
    pub(crate) update_mask: Option<Vec<String>>,
    /// What to do when one does not exist.
    #[serde(default)]
    pub(crate) action_on_non_existence: OnNonExistence,
}

/// Airflow's `BulkDeleteAction[T]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, bound = "T: DeserializeOwned")]
pub(crate) struct BulkDeleteAction<T> {
    /// The entities to delete: keys, or entity objects.
    pub(crate) entities: Vec<DeleteEntity<T>>,
    /// What to do when one does not exist.
    #[serde(default)]
    pub(crate) action_on_non_existence: OnNonExistence,
}

/// Airflow's `BulkActionOnExistence`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum OnExistence {
    /// The action fails (409) when any entity exists.
    #[default]
    Fail,
    /// Existing entities are left alone.
    Skip,
    /// Existing entities are changed to the given fields.
    Overwrite,
}

/// Airflow's `BulkActionNotOnExistence`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum OnNonExistence {
    /// The action fails (404) when any entity is missing.
    #[default]
    Fail,
    /// Missing entities are passed over.
    Skip,
}

/// An entity of a delete action: its key, or the entity itself (its key field counts).
#[derive(Debug)]
pub(crate) enum DeleteEntity<T> {
    /// The key (pool name, variable key, connection id, …).
    Key(String),
    /// A whole entity.
    Entity(T),
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for DeleteEntity<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(key) => Ok(DeleteEntity::Key(key)),
            other => T::deserialize(other).map(DeleteEntity::Entity).map_err(|e| {
                serde::de::Error::custom(format!("a delete entity is a key (string) or an entity object: {e}"))
            }),
        }
    }
}

/// Airflow's `BulkActionResponse`: the keys done, and why the action failed.
#[derive(Debug, Default, Serialize, ToSchema)]
pub(crate) struct BulkActionResponse {
    /// Keys of the entities the action changed.
    pub(crate) success: Vec<String>,
    /// One `{"error": detail, "status_code": status}` per failure.
    #[schema(value_type = Vec<Object>)]
    pub(crate) errors: Vec<Map<String, Value>>,
}

/// Airflow's `BulkResponse`: one [`BulkActionResponse`] per kind of action the request had, else `null`.
#[derive(Debug, Default, Serialize, ToSchema)]
pub(crate) struct BulkResponse {
    /// Outcome of the create actions.
    pub(crate) create: Option<BulkActionResponse>,
    /// Outcome of the update actions.
    pub(crate) update: Option<BulkActionResponse>,
    /// Outcome of the delete actions.
    pub(crate) delete: Option<BulkActionResponse>,
}

/// One kind of entity that bulk requests change: how to find, create, change and delete it,
/// with the same checks and SQL as its single-item routes.
pub(crate) trait BulkService: Sync {
    /// What create and update actions carry (Airflow's `PoolBody`, `VariableBody`, …).
    type Entity: DeserializeOwned + Send + Sync;
    /// The entity's name in messages, plural (`pools`).
    const PLURAL: &'static str;
    /// The key field's name in messages (`name`, `key`, `connection_id`).
    const KEY_FIELD: &'static str;
    /// The entity's key, or a 400 when it has none.
    fn key(entity: &Self::Entity) -> Result<String, ApiError>;
    /// Which of `keys` exist.
    async fn existing(&self, tx: &Transaction<'_>, keys: &[String]) -> Result<HashSet<String>, ApiError>;
    /// Creates `entity`, or changes the existing one to its fields when `exists` (overwrite).
    async fn create(&self, tx: &Transaction<'_>, entity: Self::Entity, exists: bool) -> Result<(), ApiError>;
    /// Changes the existing `entity` to its fields named in `update_mask` (all when empty).
    async fn update(&self, tx: &Transaction<'_>, entity: Self::Entity, update_mask: &[String]) -> Result<(), ApiError>;
    /// Deletes the existing entity `key`.
    async fn delete(&self, tx: &Transaction<'_>, key: &str) -> Result<(), ApiError>;
}

/// Runs `body` for `service` in one transaction on `db` (see the module documentation).
pub(crate) async fn run<S: BulkService>(
    service: &S,
    db: &mut deadpool_postgres::Object,
    body: BulkBody<S::Entity>,
) -> Result<BulkResponse, ApiError> {
    let mut tx = db.transaction().await?;
    let mut response = BulkResponse::default();
    for action in body.actions {
        let slot = match &action {
            BulkAction::Create(_) => &mut response.create,
            BulkAction::Update(_) => &mut response.update,
            BulkAction::Delete(_) => &mut response.delete,
        }
        .get_or_insert_with(BulkActionResponse::default);
        let savepoint = tx.transaction().await?;
        let outcome = match action {
            BulkAction::Create(create) => run_create(service, &savepoint, create).await,
            BulkAction::Update(update) => run_update(service, &savepoint, update).await,
            BulkAction::Delete(delete) => run_delete(service, &savepoint, delete).await,
        };
        match outcome {
            Ok(keys) => {
                savepoint.commit().await?;
                slot.success.extend(keys);
            }
            Err(error @ (ApiError::Db(_) | ApiError::Unavailable(_))) => return Err(error),
            Err(error) => {
                savepoint.rollback().await?;
                slot.errors.push(error_entry(error));
            }
        }
    }
    tx.commit().await?;
    Ok(response)
}

/// Airflow's shape of one action error.
fn error_entry(error: ApiError) -> Map<String, Value> {
    let (status, detail) = error.status_and_detail();
    let Value::Object(entry) = json!({"error": detail, "status_code": status.as_u16()}) else {
        unreachable!("a JSON object literal is an object")
    };
    entry
}

async fn run_create<S: BulkService>(
    service: &S,
    tx: &Transaction<'_>,
    action: BulkCreateAction<S::Entity>,
) -> Result<Vec<String>, ApiError> {
    let keys = action.entities.iter().map(S::key).collect::<Result<Vec<_>, _>>()?;
    let existing = service.existing(tx, &keys).await?;
    if action.action_on_existence == OnExistence::Fail && !existing.is_empty() {
        return Err(ApiError::Conflict(format!(
            "{} with these {}s already exist: {}; send action_on_existence \"skip\" or \"overwrite\" to keep or change them",
            S::PLURAL,
            S::KEY_FIELD,
            listed(&keys, &existing, true)
        )));
    }
    let mut done = Vec::new();
    for (key, entity) in keys.into_iter().zip(action.entities) {
        let exists = existing.contains(&key);
        if exists && action.action_on_existence == OnExistence::Skip {
            continue;
        }
        service.create(tx, entity, exists).await?;
        done.push(key);
    }
    Ok(done)
}

async fn run_update<S: BulkService>(
    service: &S,
    tx: &Transaction<'_>,
    action: BulkUpdateAction<S::Entity>,
) -> Result<Vec<String>, ApiError> {
    let keys = action.entities.iter().map(S::key).collect::<Result<Vec<_>, _>>()?;
    let existing = service.existing(tx, &keys).await?;
    check_missing::<S>(&keys, &existing, action.action_on_non_existence)?;
    let mask = action.update_mask.unwrap_or_default();
    let mut done = Vec::new();
    for (key, entity) in keys.into_iter().zip(action.entities) {
        if existing.contains(&key) {
            service.update(tx, entity, &mask).await?;
            done.push(key);
        }
    }
    Ok(done)
}

async fn run_delete<S: BulkService>(
    service: &S,
    tx: &Transaction<'_>,
    action: BulkDeleteAction<S::Entity>,
) -> Result<Vec<String>, ApiError> {
    let keys = action
        .entities
        .iter()
        .map(|entity| match entity {
            DeleteEntity::Key(key) => Ok(key.clone()),
            DeleteEntity::Entity(entity) => S::key(entity),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let existing = service.existing(tx, &keys).await?;
    check_missing::<S>(&keys, &existing, action.action_on_non_existence)?;
    let mut done = Vec::new();
    for key in keys {
        if existing.contains(&key) && !done.contains(&key) {
            service.delete(tx, &key).await?;
            done.push(key);
        }
    }
    Ok(done)
}

fn check_missing<S: BulkService>(
    keys: &[String],
    existing: &HashSet<String>,
    on_missing: OnNonExistence,
) -> Result<(), ApiError> {
    if on_missing == OnNonExistence::Fail && keys.iter().any(|key| !existing.contains(key)) {
        return Err(ApiError::NotFound(format!(
            "{} with these {}s were not found: {}; send action_on_non_existence \"skip\" to pass over them",
            S::PLURAL,
            S::KEY_FIELD,
            listed(keys, existing, false)
        )));
    }
    Ok(())
}

/// The keys that exist (or, with `present` false, that do not), quoted, in request order.
fn listed(keys: &[String], existing: &HashSet<String>, present: bool) -> String {
    let mut seen = HashSet::new();
    keys.iter()
        .filter(|key| existing.contains(*key) == present && seen.insert(*key))
        .map(|key| format!("`{key}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The OpenAPI schema of a `BulkBody[T]` whose entities are `T` (see [`bulk_body_schema`]).
pub(crate) fn body_schema<T: ToSchema>() -> RefOr<Schema> {
    let entity = || T::schema();
    let string = || ObjectBuilder::new().schema_type(Type::String);
    let action = |name: &str| {
        ObjectBuilder::new()
            .property("action", string().enum_values(Some([name])))
            .required("action")
            .property("entities", ArrayBuilder::new().items(entity()))
            .required("entities")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
    };
    let on_missing = || string().enum_values(Some(["fail", "skip"])).default(Some(json!("fail")));
    let on_existence = string().enum_values(Some(["fail", "skip", "overwrite"])).default(Some(json!("fail")));
    let create = action("create").property("action_on_existence", on_existence);
    let update = action("update")
        .property(
            "update_mask",
            OneOfBuilder::new()
                .item(ArrayBuilder::new().items(string()))
                .item(ObjectBuilder::new().schema_type(Type::Null)),
        )
        .property("action_on_non_existence", on_missing());
    let key_or_entity = OneOfBuilder::new().item(string()).item(entity());
    let delete = action("delete")
        .property("entities", ArrayBuilder::new().items(key_or_entity))
        .property("action_on_non_existence", on_missing());
    ObjectBuilder::new()
        .property("actions", ArrayBuilder::new().items(OneOfBuilder::new().item(create).item(update).item(delete)))
        .required("actions")
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .into()
}

/// Declares `$name`, the OpenAPI schema (Airflow's `BulkBody_$entity_`) of a
/// bulk body of `$entity`, for `#[utoipa::path(request_body = $name)]`.
macro_rules! bulk_body_schema {
    ($name:ident, $entity:ty) => {
        /// A bulk body's schema, for the OpenAPI document.
        pub(crate) struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                crate::routes::bulk::body_schema::<$entity>()
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                format!("BulkBody_{}_", <$entity as utoipa::ToSchema>::name()).into()
            }
        }
    };
}
pub(crate) use bulk_body_schema;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Thing {
        name: String,
    }

    #[test]
    fn actions_are_told_apart_by_their_action_field_with_airflows_defaults() {
        let body: BulkBody<Thing> = serde_json::from_value(json!({"actions": [
            {"action": "create", "entities": [{"name": "a"}]},
            {"action": "update", "entities": [{"name": "a"}], "update_mask": ["name"], "action_on_non_existence": "skip"},
            {"action": "delete", "entities": ["a", {"name": "b"}]},
        ]}))
        .unwrap();
        let [BulkAction::Create(create), BulkAction::Update(update), BulkAction::Delete(delete)] = &body.actions[..]
        else {
            panic!("{body:?}")
        };
        assert_eq!((create.entities[0].name.as_str(), create.action_on_existence), ("a", OnExistence::Fail));
        assert_eq!(update.action_on_non_existence, OnNonExistence::Skip);
        assert!(
            matches!(&delete.entities[..], [DeleteEntity::Key(a), DeleteEntity::Entity(b)] if a == "a" && b.name == "b")
        );
    }

    #[test]
    fn unknown_actions_and_fields_are_refused() {
        let unknown =
            serde_json::from_value::<BulkBody<Thing>>(json!({"actions": [{"action": "upsert", "entities": []}]}));
        assert!(unknown.unwrap_err().to_string().contains("upsert"));
        let extra = json!({"actions": [{"action": "create", "entities": [], "colour": 1}]});
        assert!(serde_json::from_value::<BulkBody<Thing>>(extra).is_err());
        let bad_entity = json!({"actions": [{"action": "delete", "entities": [3]}]});
        assert!(serde_json::from_value::<BulkBody<Thing>>(bad_entity)
            .unwrap_err()
            .to_string()
            .contains("key (string)"));
    }

    #[test]
    fn listed_keys_are_quoted_once_in_request_order() {
        let keys = ["b".to_string(), "a".to_string(), "b".to_string(), "c".to_string()];
        let existing: HashSet<String> = ["a".to_string(), "b".to_string()].into();
        assert_eq!(listed(&keys, &existing, true), "`b`, `a`");
        assert_eq!(listed(&keys, &existing, false), "`c`");
    }
}
