//! The users page, `/users` (admins only): every user with their role, and
//! the forms that create, change and delete one through the API.

use axum::{
    extract::{Path, RawQuery, State},
    http::Method,
    response::Response,
    Extension,
};
use gust_shared::db;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{delete_form, outcome, with_status, ListQuery, Refusal, PAGE_SIZE};
use crate::{
    ui::{
        api_call::{path, Api},
        error::UiError,
        layout::{self, Nav},
        pages::run::query,
        session::{Session, UiForm},
    },
    ApiError, AppState,
};

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
