//! `/api/v2/gust/users`: admins manage who may call the API; the last admin
//! stays; a deleted user's tokens, and tokens older than a password or role
//! change, stop working. Runs against the real PostgreSQL on 127.0.0.1:5432.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{Method, StatusCode};
use gust_tests::api::{TestApi, ADMIN_USER};
use gust_webapi::auth::{Auth, Claims, Role};
use serde_json::{json, Value};

const USERS: &str = "/api/v2/gust/users";

/// The token key of [`api_with_known_key`], so tests can sign tokens with any `iat`.
const SECRET: [u8; 32] = [42; 32];

async fn api_with_known_key() -> TestApi {
    TestApi::start_with(|state| state.with_auth(Auth::with_secret(&SECRET, Duration::from_secs(3600)))).await
}

/// A token for `username` with `role`, signed with [`SECRET`] as if issued `age_secs` ago.
fn token_issued_ago(username: &str, role: Role, age_secs: u64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let claims = Claims { sub: username.into(), role, iat: now - age_secs, exp: now + 3600 };
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(&SECRET)).unwrap()
}

async fn create_user(api: &TestApi, username: &str, password: &str, role: &str) -> gust_tests::api::Reply {
    let body = json!({"username": username, "password": password, "role": role}).to_string();
    api.send_json(Method::POST, USERS, &body).await
}

async fn login(api: &TestApi, username: &str, password: &str) -> gust_tests::api::Reply {
    let body = json!({"username": username, "password": password}).to_string();
    api.send_as(None, Method::POST, "/auth/token", Some(&body)).await
}

fn ok(reply: gust_tests::api::Reply, status: StatusCode) -> Value {
    assert_eq!(reply.status, status, "{}", reply.text());
    reply.json()
}

/// Moves every user's last change an hour back, so a token signed "10 seconds ago" postdates it.
async fn backdate_user_changes(api: &TestApi) {
    let client = api.pool.get().await.unwrap();
    client.execute("UPDATE users SET updated_at = now() - interval '1 hour'", &[]).await.unwrap();
}

#[tokio::test]
async fn an_admin_creates_reads_lists_changes_and_deletes_a_user() {
    let api = TestApi::start().await;
    let created = ok(create_user(&api, "ana", "ana-password", "viewer").await, StatusCode::CREATED);
    assert_eq!((created["username"].as_str(), created["role"].as_str()), (Some("ana"), Some("viewer")));
    assert!(created["created_at"].is_string() && created["updated_at"].is_string(), "{created}");

    let one = ok(api.get(&format!("{USERS}/ana")).await, StatusCode::OK);
    assert_eq!(one, created);
    let list = ok(api.get(USERS).await, StatusCode::OK);
    assert_eq!(list["total_entries"], 2);
    let names: Vec<&str> = list["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, [ADMIN_USER, "ana"], "by name");
    let page = ok(api.get(&format!("{USERS}?limit=1&offset=1")).await, StatusCode::OK);
    assert_eq!((page["users"][0]["username"].as_str(), page["total_entries"].as_i64()), (Some("ana"), Some(2)));

    let patched = api.send_json(Method::PATCH, &format!("{USERS}/ana"), r#"{"role": "operator"}"#).await;
    assert_eq!(ok(patched, StatusCode::OK)["role"], "operator");

    let deleted = api.send_json(Method::DELETE, &format!("{USERS}/ana"), "").await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text());
    api.get(&format!("{USERS}/ana")).await.assert_error(StatusCode::NOT_FOUND);
    api.send_json(Method::DELETE, &format!("{USERS}/ana"), "").await.assert_error(StatusCode::NOT_FOUND);
    api.send_json(Method::PATCH, &format!("{USERS}/ana"), r#"{"role": "viewer"}"#)
        .await
        .assert_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn no_answer_ever_carries_a_password_or_its_hash() {
    let api = TestApi::start().await;
    let created = create_user(&api, "ana", "ana-password", "viewer").await;
    let patched = api.send_json(Method::PATCH, &format!("{USERS}/ana"), r#"{"password": "new-password"}"#).await;
    for reply in [created, patched, api.get(USERS).await, api.get(&format!("{USERS}/ana")).await] {
        let text = reply.text();
        assert!(reply.status.is_success(), "{text}");
        assert!(!text.contains("password") && !text.contains("argon2"), "{text}");
    }
}

#[tokio::test]
async fn a_taken_username_is_a_409() {
    let api = TestApi::start().await;
    ok(create_user(&api, "ana", "ana-password", "viewer").await, StatusCode::CREATED);
    let detail = create_user(&api, "ana", "other-password", "admin").await.assert_error(StatusCode::CONFLICT);
    assert!(detail.contains("ana") && detail.contains("already exists"), "{detail}");
}

#[tokio::test]
async fn a_short_password_an_unknown_role_a_padded_username_or_an_empty_patch_is_a_400() {
    let api = TestApi::start().await;
    let short = create_user(&api, "ana", "short", "viewer").await.assert_error(StatusCode::BAD_REQUEST);
    assert!(short.contains("at least 8 characters"), "{short}");
    let role = create_user(&api, "ana", "ana-password", "root").await.assert_error(StatusCode::BAD_REQUEST);
    assert!(role.contains("viewer, operator or admin"), "{role}");
    let name = create_user(&api, " ana", "ana-password", "viewer").await.assert_error(StatusCode::BAD_REQUEST);
    assert!(name.contains("username"), "{name}");
    ok(create_user(&api, "ana", "ana-password", "viewer").await, StatusCode::CREATED);
    let path = format!("{USERS}/ana");
    let empty = api.send_json(Method::PATCH, &path, "{}").await.assert_error(StatusCode::BAD_REQUEST);
    assert!(empty.contains("role") && empty.contains("password"), "{empty}");
    api.send_json(Method::PATCH, &path, r#"{"password": "short"}"#).await.assert_error(StatusCode::BAD_REQUEST);
    api.send_json(Method::PATCH, &path, r#"{"role": "root"}"#).await.assert_error(StatusCode::BAD_REQUEST);
    let renamed = api.send_json(Method::PATCH, &path, r#"{"username": "bob"}"#).await;
    assert!(renamed.status.is_client_error(), "an unknown field is refused: {}", renamed.text());
}

#[tokio::test]
async fn viewers_and_operators_get_403_on_every_users_route_reads_included() {
    let api = TestApi::start().await;
    for role in [Role::Viewer, Role::Operator] {
        let token = api.token_for(role).await;
        for (method, path, body) in [
            (Method::GET, USERS.to_string(), None),
            (Method::POST, USERS.to_string(), Some(r#"{"username": "x", "password": "x-password", "role": "admin"}"#)),
            (Method::GET, format!("{USERS}/{ADMIN_USER}"), None),
            (Method::PATCH, format!("{USERS}/{role}-user"), Some(r#"{"role": "admin"}"#)),
            (Method::DELETE, format!("{USERS}/{ADMIN_USER}"), None),
        ] {
            let detail =
                api.send_as(Some(&token), method.clone(), &path, body).await.assert_error(StatusCode::FORBIDDEN);
            assert!(detail.contains("needs the admin role"), "{role} {method} {path}: {detail}");
        }
    }
    let users = ok(api.get(USERS).await, StatusCode::OK);
    assert_eq!(users["total_entries"], 3, "nobody was created: {users}");
}

#[tokio::test]
async fn the_last_admin_can_be_neither_deleted_nor_demoted() {
    let api = TestApi::start().await;
    let path = format!("{USERS}/{ADMIN_USER}");
    let deleted = api.send_json(Method::DELETE, &path, "").await.assert_error(StatusCode::CONFLICT);
    assert!(deleted.contains("last admin"), "{deleted}");
    let demoted =
        api.send_json(Method::PATCH, &path, r#"{"role": "operator"}"#).await.assert_error(StatusCode::CONFLICT);
    assert!(demoted.contains("last admin") && demoted.contains("make another user admin first"), "{demoted}");
    assert_eq!(ok(api.get(&path).await, StatusCode::OK)["role"], "admin");
    let kept_role = api.send_json(Method::PATCH, &path, r#"{"role": "admin"}"#).await;
    assert_eq!(kept_role.status, StatusCode::OK, "re-stating admin is no demotion: {}", kept_role.text());
}

#[tokio::test]
async fn one_of_two_admins_can_be_deleted_but_then_not_the_other() {
    let api = TestApi::start().await;
    ok(create_user(&api, "second", "second-password", "admin").await, StatusCode::CREATED);
    let second = ok(login(&api, "second", "second-password").await, StatusCode::CREATED);
    let second_token = second["access_token"].as_str().unwrap().to_string();
    let deleted = api.send_json(Method::DELETE, &format!("{USERS}/{ADMIN_USER}"), "").await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text());
    let last = api.send_as(Some(&second_token), Method::DELETE, &format!("{USERS}/second"), None).await;
    assert!(last.assert_error(StatusCode::CONFLICT).contains("last admin"));
}

#[tokio::test]
async fn a_created_user_logs_in_and_gets_their_role() {
    let api = TestApi::start().await;
    ok(create_user(&api, "ops", "ops-password", "operator").await, StatusCode::CREATED);
    let token = ok(login(&api, "ops", "ops-password").await, StatusCode::CREATED);
    let token = token["access_token"].as_str().unwrap();
    assert_eq!(api.auth.verify(token).unwrap().role, Role::Operator);
    let dags = api.send_as(Some(token), Method::GET, "/api/v2/dags", None).await;
    assert_eq!(dags.status, StatusCode::OK, "{}", dags.text());
    login(&api, "ops", "wrong-password").await.assert_error(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_new_password_replaces_the_old_one_at_login() {
    let api = TestApi::start().await;
    ok(create_user(&api, "ops", "ops-password", "operator").await, StatusCode::CREATED);
    let patched = api.send_json(Method::PATCH, &format!("{USERS}/ops"), r#"{"password": "fresh-password"}"#).await;
    assert_eq!(ok(patched, StatusCode::OK)["role"], "operator", "the role stays");
    login(&api, "ops", "ops-password").await.assert_error(StatusCode::UNAUTHORIZED);
    assert_eq!(login(&api, "ops", "fresh-password").await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_deleted_users_token_stops_working() {
    let api = TestApi::start().await;
    ok(create_user(&api, "gone", "gone-password", "viewer").await, StatusCode::CREATED);
    let token = ok(login(&api, "gone", "gone-password").await, StatusCode::CREATED);
    let token = token["access_token"].as_str().unwrap();
    assert_eq!(api.send_as(Some(token), Method::GET, "/api/v2/dags", None).await.status, StatusCode::OK);
    let deleted = api.send_json(Method::DELETE, &format!("{USERS}/gone"), "").await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text());
    let detail =
        api.send_as(Some(token), Method::GET, "/api/v2/dags", None).await.assert_error(StatusCode::UNAUTHORIZED);
    assert!(detail.contains("no longer exists"), "{detail}");
}

#[tokio::test]
async fn a_password_change_voids_the_users_older_tokens() {
    let api = api_with_known_key().await;
    ok(create_user(&api, "ana", "ana-password", "operator").await, StatusCode::CREATED);
    backdate_user_changes(&api).await;
    let old = token_issued_ago("ana", Role::Operator, 10);
    assert_eq!(api.send_as(Some(&old), Method::GET, "/api/v2/dags", None).await.status, StatusCode::OK);
    let patched = api.send_json(Method::PATCH, &format!("{USERS}/ana"), r#"{"password": "fresh-password"}"#).await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());
    let detail =
        api.send_as(Some(&old), Method::GET, "/api/v2/dags", None).await.assert_error(StatusCode::UNAUTHORIZED);
    assert!(detail.contains("changed after this token was issued"), "{detail}");
    let fresh = ok(login(&api, "ana", "fresh-password").await, StatusCode::CREATED);
    let fresh = fresh["access_token"].as_str().unwrap();
    assert_eq!(api.send_as(Some(fresh), Method::GET, "/api/v2/dags", None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_demoted_users_older_token_stops_working_and_a_new_login_carries_the_new_role() {
    let api = api_with_known_key().await;
    ok(create_user(&api, "ana", "ana-password", "operator").await, StatusCode::CREATED);
    backdate_user_changes(&api).await;
    let old = token_issued_ago("ana", Role::Operator, 10);
    let patched = api.send_json(Method::PATCH, &format!("{USERS}/ana"), r#"{"role": "viewer"}"#).await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());
    let trigger = api.send_as(Some(&old), Method::POST, "/api/v2/dags/etl/dagRuns", Some("{}")).await;
    trigger.assert_error(StatusCode::UNAUTHORIZED);
    let fresh = ok(login(&api, "ana", "ana-password").await, StatusCode::CREATED);
    assert_eq!(api.auth.verify(fresh["access_token"].as_str().unwrap()).unwrap().role, Role::Viewer);
}

#[tokio::test]
async fn the_role_in_force_is_the_stored_one_not_the_one_a_token_claims() {
    let api = TestApi::start().await;
    ok(create_user(&api, "ana", "ana-password", "viewer").await, StatusCode::CREATED);
    let overclaiming = api.auth.issue("ana", Role::Admin).unwrap();
    let detail = api.send_as(Some(&overclaiming), Method::GET, USERS, None).await.assert_error(StatusCode::FORBIDDEN);
    assert!(detail.contains("`ana` is viewer"), "{detail}");
}

#[tokio::test]
async fn restating_the_current_role_keeps_the_users_tokens() {
    let api = api_with_known_key().await;
    ok(create_user(&api, "ana", "ana-password", "operator").await, StatusCode::CREATED);
    backdate_user_changes(&api).await;
    let old = token_issued_ago("ana", Role::Operator, 10);
    let same_role = api.send_json(Method::PATCH, &format!("{USERS}/ana"), r#"{"role": "operator"}"#).await;
    assert_eq!(same_role.status, StatusCode::OK, "{}", same_role.text());
    assert_eq!(api.send_as(Some(&old), Method::GET, "/api/v2/dags", None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn deleting_an_admin_while_another_admin_deletion_is_in_flight_cannot_remove_both() {
    let api = TestApi::start().await;
    ok(create_user(&api, "second", "second-password", "admin").await, StatusCode::CREATED);
    // Another deletion, in flight: it holds the admin rows and has removed `second`, not yet committed.
    let mut other = api.pool.get().await.unwrap();
    let in_flight = other.transaction().await.unwrap();
    in_flight.query("SELECT username FROM users WHERE role = 'admin' FOR UPDATE", &[]).await.unwrap();
    in_flight.execute("DELETE FROM users WHERE username = 'second'", &[]).await.unwrap();

    let request = axum::http::Request::delete(format!("{USERS}/{ADMIN_USER}"))
        .header("authorization", format!("Bearer {}", api.admin_token))
        .body(axum::body::Body::empty())
        .unwrap();
    let deletion = tokio::spawn(tower::ServiceExt::oneshot(api.router.clone(), request));
    // An absence: 300 ms pass and the deletion has not finished (it waits on the rows the other one holds).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!deletion.is_finished(), "the deletion waits for the one in flight");
    in_flight.commit().await.unwrap();

    let response = deletion.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT, "`admin` is now the last admin");
    let client = api.pool.get().await.unwrap();
    let admins: i64 = client.query_one("SELECT count(*) FROM users WHERE role = 'admin'", &[]).await.unwrap().get(0);
    assert_eq!(admins, 1);
}
