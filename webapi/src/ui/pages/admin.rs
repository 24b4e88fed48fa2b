//! The admin pages: pools, variables (secret values masked as the API masks
//! them), import errors, dead letters and users. Reads come from the
//! database, except variables, which are read through the API so their
//! values are masked by the API's own rule; every write goes through
//! [`Api::call`] and redirects back to its list, or re-renders the list with
//! the API's refusal and status.

use axum::{
    extract::{Path, RawQuery, State},
    http::{Method, StatusCode},
    response::{IntoResponse, Redirect, Response},
    Extension,
};
use gust_shared::db;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{
    ui::{
        api_call::{path, query_value, Api, ApiReply},
        error::UiError,
        layout::{self, Nav},
        pages::run::{query, refusal},
        session::{Session, UiForm},
    },
    ApiError, AppState,
};

/// Rows per page of every admin list.
const PAGE_SIZE: i64 = 50;

/// The query of an admin list: the page, an item to edit, a search.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    offset: Option<i64>,
    #[serde(default)]
    edit: Option<String>,
    #[serde(default)]
    q: Option<String>,
}

impl ListQuery {
    fn offset(&self) -> Result<i64, UiError> {
        match self.offset {
            Some(offset) if offset < 0 => Err(UiError::BadRequest(format!("`offset` must be 0 or more, got {offset}"))),
            offset => Ok(offset.unwrap_or(0)),
        }
    }

    fn search(&self) -> &str {
        self.q.as_deref().map(str::trim).unwrap_or("")
    }
}

/// A refusal to show above a list: the API's status and detail.
type Refusal = (StatusCode, String);

/// A write's result: the 303 to `list` when the API did it, its refusal when it refused; other failures stay errors.
fn outcome(result: Result<ApiReply, UiError>, list: &str) -> Result<Result<Response, Refusal>, UiError> {
    match result {
        Ok(_) => Ok(Ok(Redirect::to(list).into_response())),
        Err(error) => Ok(Err(refusal(error)?)),
    }
}

/// A page answered with `status`: 200 normally, the refusal's status after a refused write.
fn with_status(refused: Option<&Refusal>, page: Markup) -> Response {
    (refused.map_or(StatusCode::OK, |(status, _)| *status), page).into_response()
}

/// "Yes" or "No".
fn yes_no(value: bool) -> &'static str {
    if value {
        "Yes"
    } else {
        "No"
    }
}

/// The small form that deletes one item.
fn delete_form(session: &Session, action: &str, what: &str) -> Markup {
    html! {
        form.inline.delete method="post" action=(action) {
            (layout::csrf_field(session))
            button.danger type="submit" aria-label={ "Delete " (what) } { "Delete" }
        }
    }
}

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

/// `GET /import-errors`: DAG files that failed to parse, with the whole problem text, newest first.
pub(crate) async fn import_errors(
    State(state): State<AppState>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> Result<Markup, UiError> {
    let offset = query::<ListQuery>(raw.as_deref())?.offset()?;
    let db = state.db().await?;
    let (errors, total) = db::import_errors::list(&db, PAGE_SIZE, offset, "timestamp DESC, id DESC").await?;
    drop(db);
    let content = html! {
        h1 { "Import errors" }
        @if total == 0 { p.ok { "Every DAG file parses." } }
        @for error in &errors {
            section.import-error data-id=(error.id) {
                h2.filename { (error.filename) }
                p.muted { "Last seen " (layout::time(Some(error.timestamp))) }
                pre.problem { (error.stacktrace) }
            }
        }
        (layout::pager(total, PAGE_SIZE, offset, |offset| format!("/import-errors?offset={offset}")))
    };
    Ok(layout::page(&session, "Import errors", Nav::ImportErrors, content))
}

/// A dead letter's body: pretty JSON when it is JSON, else the text as received.
fn message_block(body: &str) -> Markup {
    match serde_json::from_str::<Value>(body) {
        Ok(json) => layout::json_block(&json),
        Err(_) => html! { pre.message { (body) } },
    }
}

/// The task instance a dead letter names, linked when it names one fully.
fn letter_task(letter: &db::dead_letters::DeadLetter) -> Markup {
    match (&letter.dag_id, &letter.run_id, &letter.task_id) {
        (Some(dag_id), Some(run_id), Some(task_id)) => html! {
            a href=(path(&["dags", dag_id, "runs", run_id, "tasks", task_id])) { (dag_id) " / " (run_id) " / " (task_id) }
            @if let Some(try_number) = letter.try_number { " (try " (try_number) ")" }
        },
        _ => html! { span.muted { "–" } },
    }
}

/// `GET /dead-letters`: task messages the broker gave up on, newest first, with why and the message.
pub(crate) async fn dead_letters(
    State(state): State<AppState>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> Result<Markup, UiError> {
    let offset = query::<ListQuery>(raw.as_deref())?.offset()?;
    let db = state.db().await?;
    let (letters, total) = db::dead_letters::list(&db, PAGE_SIZE, offset).await?;
    drop(db);
    let content = html! {
        h1 { "Dead letters" }
        p.muted { "Task messages that reached the dead queue: unparseable, of an unknown schema version, or over the delivery limit." }
        @if total == 0 { p.ok { "No message was dead-lettered." } }
        @else {
            table #dead-letters {
                thead { tr { th { "Id" } th { "Queue" } th { "Reason" } th { "Received" } th { "Task" } th { "Message" } } }
                tbody {
                    @for letter in &letters {
                        tr data-id=(letter.id) {
                            td { (letter.id) }
                            td.queue { (letter.queue) @if !letter.routing_key.is_empty() { br; span.muted { (letter.routing_key) } } }
                            td.reason {
                                strong { (letter.reason) }
                                @if !letter.detail.is_empty() { p.detail { (letter.detail) } }
                                @if let Some(deliveries) = letter.deliveries { p.muted { (deliveries) " deliveries" } }
                            }
                            td { (layout::time(letter.received_at)) }
                            td { (letter_task(letter)) }
                            td.message { (message_block(&letter.body)) }
                        }
                    }
                }
            }
        }
        (layout::pager(total, PAGE_SIZE, offset, |offset| format!("/dead-letters?offset={offset}")))
    };
    Ok(layout::page(&session, "Dead letters", Nav::DeadLetters, content))
}

/// The API route template of the users list, for [`Session::may`].
const USERS_ROUTE: &str = "/api/v2/gust/users";
/// The roles a user may have, weakest first.
const ROLES: [&str; 3] = ["viewer", "operator", "admin"];

/// The user forms' fields: `mode=create` makes a user, `mode=update` changes one's role and/or password.
#[derive(Default, Deserialize)]
pub(crate) struct UserForm {
    #[serde(default)]
    mode: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    role: String,
}

fn role_select(selected: &str) -> Markup {
    html! {
        select name="role" required {
            @for role in ROLES { option value=(role) selected[role == selected] { (role) } }
        }
    }
}

/// The users page; a non-admin gets a 403 page.
async fn users_page(
    state: &AppState,
    session: &Session,
    query: &ListQuery,
    entered: Option<(&str, &str)>,
    refused: Option<Refusal>,
) -> Result<Response, UiError> {
    if !session.may(Method::GET, USERS_ROUTE) {
        return Err(UiError::Forbidden(format!(
            "the users page is for admins; you are signed in as `{}` ({})",
            session.user.username, session.user.role
        )));
    }
    let offset = query.offset()?;
    let (users, total) = db::users::list(&state.db().await?, PAGE_SIZE, offset).await?;
    let (new_username, new_role) = entered.unwrap_or(("", "viewer"));
    let content = html! {
        h1 { "Users" }
        p.muted { "A changed role or password, or a deletion, ends the user's sessions." }
        (layout::alert(refused.as_ref().map(|(_, detail)| detail.as_str())))
        table #users {
            thead { tr { th { "Username" } th { "Role" } th { "Created" } th { "Updated" } th { "Change role or password" } th { span.sr-only { "Delete" } } } }
            tbody {
                @for user in &users {
                    tr data-username=(user.username) {
                        td.username { (user.username) }
                        td.role { (user.role) }
                        td { (layout::time(Some(user.created_at))) }
                        td { (layout::time(Some(user.updated_at))) }
                        td {
                            form.inline.user-change method="post" action="/users" {
                                (layout::csrf_field(session))
                                input type="hidden" name="mode" value="update";
                                input type="hidden" name="username" value=(user.username);
                                label { span.sr-only { "Role of " (user.username) } (role_select(&user.role)) }
                                label {
                                    span.sr-only { "New password of " (user.username) }
                                    input type="password" name="password" minlength="8" autocomplete="new-password" placeholder="new password (optional)";
                                }
                                button.secondary type="submit" { "Change" }
                            }
                        }
                        td { (delete_form(session, &path(&["users", &user.username, "delete"]), &user.username)) }
                    }
                }
            }
        }
        (layout::pager(total, PAGE_SIZE, offset, |offset| format!("/users?offset={offset}")))
        h2 { "Create a user" }
        form #user-form .stack method="post" action="/users" {
            (layout::csrf_field(session))
            input type="hidden" name="mode" value="create";
            label { "Username" input name="username" required autocomplete="off" value=(new_username); }
            label {
                "Password"
                input type="password" name="password" required minlength="8" autocomplete="new-password";
                span.help { "At least 8 characters." }
            }
            label { "Role" (role_select(new_role)) }
            div.actions { button #user-submit type="submit" { "Create user" } }
        }
    };
    Ok(with_status(refused.as_ref(), layout::page(session, "Users", Nav::Users, content)))
}

/// `GET /users` (admins only): every user with their role; create, change and delete forms.
pub(crate) async fn users(
    State(state): State<AppState>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> Result<Response, UiError> {
    users_page(&state, &session, &query(raw.as_deref())?, None, None).await
}

/// The users page after a refused write; a non-admin gets the API's own refusal page.
async fn users_refused(
    state: &AppState,
    session: &Session,
    (status, detail): Refusal,
    entered: Option<(&str, &str)>,
) -> Result<Response, UiError> {
    if !session.may(Method::GET, USERS_ROUTE) {
        return Err(UiError::Api(ApiError::with_status(status, detail)));
    }
    users_page(state, session, &ListQuery::default(), entered, Some((status, detail))).await
}

/// `POST /users`: creates a user (`POST /api/v2/gust/users`) or changes one's role and/or
/// password (`PATCH /api/v2/gust/users/{username}`).
pub(crate) async fn save_user(
    State(state): State<AppState>,
    Extension(api): Extension<Api>,
    UiForm { session, form }: UiForm<UserForm>,
) -> Result<Response, UiError> {
    let result = if form.mode == "update" {
        let mut body = json!({});
        if !form.role.is_empty() {
            body["role"] = json!(form.role);
        }
        if !form.password.is_empty() {
            body["password"] = json!(form.password);
        }
        api.call(&session, Method::PATCH, &path(&["api", "v2", "gust", "users", &form.username]), Some(&body)).await
    } else {
        let body = json!({"username": form.username, "password": form.password, "role": form.role});
        api.call(&session, Method::POST, USERS_ROUTE, Some(&body)).await
    };
    match outcome(result, "/users")? {
        Ok(done) => Ok(done),
        Err(refused) => {
            let entered = (form.mode != "update").then_some((form.username.as_str(), form.role.as_str()));
            users_refused(&state, &session, refused, entered).await
        }
    }
}

/// `POST /users/{username}/delete`: `DELETE /api/v2/gust/users/{username}`.
pub(crate) async fn delete_user(
    State(state): State<AppState>,
    Extension(api): Extension<Api>,
    Path(username): Path<String>,
    UiForm { session, .. }: UiForm<Value>,
) -> Result<Response, UiError> {
    let result = api.call(&session, Method::DELETE, &path(&["api", "v2", "gust", "users", &username]), None).await;
    match outcome(result, "/users")? {
        Ok(done) => Ok(done),
        Err(refused) => users_refused(&state, &session, refused, None).await,
    }
}
