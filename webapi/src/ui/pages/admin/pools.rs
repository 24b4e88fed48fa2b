//! The pools page, `/pools`: every pool with its slots in use, and the
//! forms that create, change and delete one through the API.

use axum::{
    extract::{Path, RawQuery, State},
    http::{Method, StatusCode},
    response::Response,
    Extension,
};
use gust_shared::db;
use maud::html;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{delete_form, outcome, with_status, yes_no, ListQuery, Refusal, PAGE_SIZE};
use crate::{
    ui::{
        api_call::{path, query_value, Api},
        error::UiError,
        layout::{self, Nav},
        pages::run::query,
        session::{Session, UiForm},
    },
    AppState,
};

/// The pool form's fields.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PoolForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    slots: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    include_deferred: Option<String>,
}

async fn pools_page(
    state: &AppState,
    session: &Session,
    query: &ListQuery,
    form: Option<PoolForm>,
    refused: Option<Refusal>,
) -> Result<Response, UiError> {
    let offset = query.offset()?;
    let db = state.db().await?;
    let (pools, total) = db::pools::list(&db, PAGE_SIZE, offset, "name ASC").await?;
    let editing = match (&form, &query.edit) {
        (None, Some(name)) => db::pools::get(&db, name).await?,
        _ => None,
    };
    drop(db);
    let form = form.unwrap_or_else(|| match &editing {
        Some(pool) => PoolForm {
            name: pool.name.clone(),
            slots: pool.slots.to_string(),
            description: pool.description.clone().unwrap_or_default(),
            include_deferred: pool.include_deferred.then(|| "true".into()),
        },
        None => PoolForm { slots: "1".into(), ..PoolForm::default() },
    });
    let may_write = session.may(Method::POST, "/api/v2/pools");
    let may_delete = session.may(Method::DELETE, "/api/v2/pools/{pool_name}");
    let content = html! {
        h1 { "Pools" }
        p.muted { "Slots bound how many task instances of a pool are queued or running at once." }
        (layout::alert(refused.as_ref().map(|(_, detail)| detail.as_str())))
        table #pools {
            thead { tr {
                th { "Name" } th { "Slots" } th { "Occupied" } th { "Running" } th { "Queued" } th { "Scheduled" }
                th { "Open" } th { "Description" } th { "Include deferred" }
                @if may_write || may_delete { th { span.sr-only { "Actions" } } }
            } }
            tbody {
                @for pool in &pools {
                    tr data-pool=(pool.name) {
                        td.name { (pool.name) }
                        td.slots { (pool.slots) }
                        td { (pool.occupied_slots()) }
                        td { (pool.running_slots) }
                        td { (pool.queued_slots) }
                        td { (pool.scheduled_slots) }
                        td.open { (pool.open_slots()) }
                        td.description { (pool.description.as_deref().unwrap_or("")) }
                        td { (yes_no(pool.include_deferred)) }
                        @if may_write || may_delete {
                            td.actions {
                                @if may_write { a.edit href={ "/pools?edit=" (query_value(&pool.name)) } { "Edit" } }
                                @if may_delete { (delete_form(session, &path(&["pools", &pool.name, "delete"]), &pool.name)) }
                            }
                        }
                    }
                }
            }
        }
        (layout::pager(total, PAGE_SIZE, offset, |offset| format!("/pools?offset={offset}")))
        @if may_write {
            h2 { @if editing.is_some() { "Change pool " (form.name) } @else { "Create or change a pool" } }
            form #pool-form .stack method="post" action="/pools" {
                (layout::csrf_field(session))
                label {
                    "Name"
                    input name="name" required maxlength="256" pattern="[A-Za-z0-9_.\\-]+" value=(form.name)
                        readonly[editing.is_some()];
                    span.help { "An existing pool's name changes that pool." }
                }
                label { "Slots" input type="number" name="slots" required min="0" step="1" value=(form.slots); }
                label { "Description" input name="description" value=(form.description); }
                label.check {
                    input type="checkbox" name="include_deferred" value="true" checked[form.include_deferred.is_some()];
                    "Deferred tasks take slots"
                }
                div.actions { button #pool-submit type="submit" { "Save pool" } }
            }
        }
    };
    Ok(with_status(refused.as_ref(), layout::page(session, "Pools", Nav::Pools, content)))
}

/// `GET /pools`: every pool with its slots in use; `?edit=<name>` fills the form with that pool.
pub(crate) async fn pools(
    State(state): State<AppState>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> Result<Response, UiError> {
    pools_page(&state, &session, &query(raw.as_deref())?, None, None).await
}

/// `POST /pools`: changes the pool of that name (`PATCH /api/v2/pools/{name}`) or creates it (`POST /api/v2/pools`).
pub(crate) async fn save_pool(
    State(state): State<AppState>,
    Extension(api): Extension<Api>,
    UiForm { session, form }: UiForm<PoolForm>,
) -> Result<Response, UiError> {
    let slots = match form.slots.trim().parse::<i64>() {
        Ok(slots) => slots,
        Err(_) => {
            let problem = format!("slots must be a whole number such as 4, and `{}` is not one", form.slots);
            let refused = Some((StatusCode::BAD_REQUEST, problem));
            return pools_page(&state, &session, &ListQuery::default(), Some(form), refused).await;
        }
    };
    let description = Some(form.description.trim()).filter(|d| !d.is_empty());
    let include_deferred = form.include_deferred.is_some();
    let existing = db::pools::get(&state.db().await?, &form.name).await?;
    let result = match existing {
        Some(pool) => {
            let mut body = json!({"slots": slots, "include_deferred": include_deferred});
            if pool.description.as_deref() != description {
                body["description"] = json!(description);
            }
            api.call(&session, Method::PATCH, &path(&["api", "v2", "pools", &form.name]), Some(&body)).await
        }
        None => {
            let body = json!({"name": form.name, "slots": slots, "description": description, "include_deferred": include_deferred});
            api.call(&session, Method::POST, "/api/v2/pools", Some(&body)).await
        }
    };
    match outcome(result, "/pools")? {
        Ok(done) => Ok(done),
        Err(refused) => pools_page(&state, &session, &ListQuery::default(), Some(form), Some(refused)).await,
    }
}

/// `POST /pools/{name}/delete`: `DELETE /api/v2/pools/{name}`.
pub(crate) async fn delete_pool(
    State(state): State<AppState>,
    Extension(api): Extension<Api>,
    Path(name): Path<String>,
    UiForm { session, .. }: UiForm<Value>,
) -> Result<Response, UiError> {
    let result = api.call(&session, Method::DELETE, &path(&["api", "v2", "pools", &name]), None).await;
    match outcome(result, "/pools")? {
        Ok(done) => Ok(done),
        Err(refused) => pools_page(&state, &session, &ListQuery::default(), None, Some(refused)).await,
    }
}
