//! The variables page, `/variables`: every variable (searchable by key),
//! values masked as the API masks them, and the forms that create, change
//! and delete one through the API.

use axum::{
    extract::{Path, RawQuery, State},
    http::Method,
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

/// The variable form's fields.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct VariableForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    description: String,
}

/// The variable being edited: its key and description, and its value only when the API shows it unmasked.
struct Editing {
    key: String,
    value: Option<String>,
    description: String,
}

async fn variables_page(
    state: &AppState,
    api: &Api,
    session: &Session,
    query: &ListQuery,
    form: Option<VariableForm>,
    refused: Option<Refusal>,
) -> Result<Response, UiError> {
    let offset = query.offset()?;
    let search = query.search();
    let mut list_path = format!("/api/v2/variables?limit={PAGE_SIZE}&offset={offset}&order_by=key");
    if !search.is_empty() {
        list_path.push_str(&format!("&variable_key_pattern={}", query_value(search)));
    }
    let listing = api.call(session, Method::GET, &list_path, None).await?.json;
    let variables = listing["variables"].as_array().cloned().unwrap_or_default();
    let total = listing["total_entries"].as_i64().unwrap_or(0);
    let editing = match (&form, &query.edit) {
        (None, Some(key)) => editing_variable(state, api, session, key).await?,
        _ => None,
    };
    let may_write = session.may(Method::POST, "/api/v2/variables");
    let may_delete = session.may(Method::DELETE, "/api/v2/variables/{variable_key}");
    let text = |variable: &Value, field: &str| variable[field].as_str().unwrap_or_default().to_string();
    let form = form.unwrap_or_else(|| match &editing {
        Some(editing) => VariableForm {
            key: editing.key.clone(),
            value: editing.value.clone().unwrap_or_default(),
            description: editing.description.clone(),
        },
        None => VariableForm::default(),
    });
    let secret_kept = editing.as_ref().is_some_and(|editing| editing.value.is_none());
    let page_link = |offset: i64| {
        let mut link = format!("/variables?offset={offset}");
        if !search.is_empty() {
            link.push_str(&format!("&q={}", query_value(search)));
        }
        link
    };
    let content = html! {
        h1 { "Variables" }
        p.muted { "Values whose key names a secret (password, token, api_key, …) are shown masked, as the API shows them." }
        (layout::alert(refused.as_ref().map(|(_, detail)| detail.as_str())))
        form #variable-search .actions method="get" action="/variables" {
            label { span.sr-only { "Key contains" } input type="search" name="q" value=(search) placeholder="Key contains…"; }
            button.secondary type="submit" { "Search" }
        }
        table #variables {
            thead { tr {
                th { "Key" } th { "Value" } th { "Description" } th { "Encrypted" }
                @if may_write || may_delete { th { span.sr-only { "Actions" } } }
            } }
            tbody {
                @for variable in &variables {
                    @let key = text(variable, "key");
                    tr data-key=(key) {
                        td.key { (key) }
                        td.value { code { (text(variable, "value")) } }
                        td.description { (text(variable, "description")) }
                        td { (yes_no(variable["is_encrypted"].as_bool().unwrap_or(false))) }
                        @if may_write || may_delete {
                            td.actions {
                                @if may_write { a.edit href={ "/variables?edit=" (query_value(&key)) } { "Edit" } }
                                @if may_delete { (delete_form(session, &path(&["variables", &key, "delete"]), &key)) }
                            }
                        }
                    }
                }
            }
        }
        @if variables.is_empty() { p.muted { "No variable" @if !search.is_empty() { " has a key containing “" (search) "”" } "." } }
        (layout::pager(total, PAGE_SIZE, offset, page_link))
        @if may_write {
            h2 { @if editing.is_some() { "Change variable " (form.key) } @else { "Create or change a variable" } }
            form #variable-form .stack method="post" action="/variables" {
                (layout::csrf_field(session))
                label {
                    "Key"
                    input name="key" required maxlength="250" value=(form.key) readonly[editing.is_some()];
                    span.help { "An existing key changes that variable." }
                }
                label {
                    "Value"
                    textarea name="value" rows="3" { (form.value) }
                    span.help {
                        @if secret_kept { "The value is secret and not shown; leave empty to keep it." }
                        @else { "For an existing key, empty keeps the current value." }
                    }
                }
                label { "Description" input name="description" value=(form.description); }
                div.actions { button #variable-submit type="submit" { "Save variable" } }
            }
        }
    };
    Ok(with_status(refused.as_ref(), layout::page(session, "Variables", Nav::Variables, content)))
}

/// The variable `key` for the edit form: its value only when the API's answer is the stored value (not masked).
async fn editing_variable(
    state: &AppState,
    api: &Api,
    session: &Session,
    key: &str,
) -> Result<Option<Editing>, UiError> {
    let Some(stored) = db::variables::get(&state.db().await?, key).await? else {
        return Ok(None);
    };
    let shown = api.call(session, Method::GET, &path(&["api", "v2", "variables", key]), None).await?.json;
    let shown_value = shown["value"].as_str();
    let value = (Some(stored.value.as_str()) == shown_value).then_some(stored.value);
    let description = shown["description"].as_str().unwrap_or_default().to_string();
    Ok(Some(Editing { key: key.to_string(), value, description }))
}

/// `GET /variables`: every variable (`?q=` filters by key), values masked as the API masks them.
pub(crate) async fn variables(
    State(state): State<AppState>,
    Extension(api): Extension<Api>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> Result<Response, UiError> {
    variables_page(&state, &api, &session, &query(raw.as_deref())?, None, None).await
}

/// `POST /variables`: changes the variable of that key (`PATCH`; an empty value keeps it) or creates it (`POST`).
pub(crate) async fn save_variable(
    State(state): State<AppState>,
    Extension(api): Extension<Api>,
    UiForm { session, form }: UiForm<VariableForm>,
) -> Result<Response, UiError> {
    let description = Some(form.description.trim()).filter(|d| !d.is_empty());
    let exists = db::variables::get(&state.db().await?, &form.key).await?.is_some();
    let result = if exists {
        let mut body = json!({"description": description});
        if !form.value.is_empty() {
            body["value"] = json!(form.value);
        }
        api.call(&session, Method::PATCH, &path(&["api", "v2", "variables", &form.key]), Some(&body)).await
    } else {
        let body = json!({"key": form.key, "value": form.value, "description": description});
        api.call(&session, Method::POST, "/api/v2/variables", Some(&body)).await
    };
    match outcome(result, "/variables")? {
        Ok(done) => Ok(done),
        Err(refused) => {
            let form = VariableForm { value: String::new(), ..form };
            variables_page(&state, &api, &session, &ListQuery::default(), Some(form), Some(refused)).await
        }
    }
}

/// `POST /variables/{key}/delete`: `DELETE /api/v2/variables/{key}`.
pub(crate) async fn delete_variable(
    State(state): State<AppState>,
    Extension(api): Extension<Api>,
    Path(key): Path<String>,
    UiForm { session, .. }: UiForm<Value>,
) -> Result<Response, UiError> {
    let result = api.call(&session, Method::DELETE, &path(&["api", "v2", "variables", &key]), None).await;
    match outcome(result, "/variables")? {
        Ok(done) => Ok(done),
        Err(refused) => variables_page(&state, &api, &session, &ListQuery::default(), None, Some(refused)).await,
    }
}
