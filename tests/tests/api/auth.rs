//! Authentication and roles: the token endpoint, bearer checks on every
//! route, role limits, failed-login rate limiting and `create-user`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{header, Method, StatusCode};
use gust_tests::api::{TestApi, ADMIN_PASSWORD, ADMIN_USER, ETL_DAG};
use gust_webapi::auth::{required_access, Access, Claims, Role, MAX_FAILED_LOGINS};
use serde_json::json;

async fn login(api: &TestApi, username: &str, password: &str) -> gust_tests::api::Reply {
    let body = json!({"username": username, "password": password}).to_string();
    api.send_as(None, Method::POST, "/auth/token", Some(&body)).await
}

/// `POST /auth/token/cli`, as `airflowctl auth login --username … --password …` sends it.
async fn cli_login(api: &TestApi, username: &str, password: &str) -> gust_tests::api::Reply {
    let body = json!({"username": username, "password": password}).to_string();
    api.send_as(None, Method::POST, "/auth/token/cli", Some(&body)).await
}

/// The `Location` of a redirect, after checking it is Airflow's 307.
fn redirect_target(reply: &gust_tests::api::Reply) -> String {
    assert_eq!(reply.status, StatusCode::TEMPORARY_REDIRECT, "{}", reply.text());
    reply.headers[header::LOCATION].to_str().unwrap().to_string()
}

fn assert_bearer_challenge(reply: &gust_tests::api::Reply) {
    reply.assert_error(StatusCode::UNAUTHORIZED);
    assert_eq!(reply.headers.get(header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()), Some("Bearer"));
}

#[tokio::test]
async fn a_valid_login_returns_a_bearer_token_that_opens_the_api() {
    let api = TestApi::start().await;
    let reply = login(&api, ADMIN_USER, ADMIN_PASSWORD).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 24 * 60 * 60);
    let token = body["access_token"].as_str().expect("access_token");
    let claims = api.auth.verify(token).unwrap();
    assert_eq!((claims.sub.as_str(), claims.role), (ADMIN_USER, Role::Admin));
    let dags = api.send_as(Some(token), Method::GET, "/api/v2/dags", None).await;
    assert_eq!(dags.status, StatusCode::OK, "{}", dags.text());
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_401() {
    let api = TestApi::start().await;
    let wrong_password = login(&api, ADMIN_USER, "not-the-password").await.assert_error(StatusCode::UNAUTHORIZED);
    let unknown_user = login(&api, "nobody", ADMIN_PASSWORD).await.assert_error(StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_password, unknown_user);
    assert!(!wrong_password.contains("password is wrong") && !wrong_password.contains("no such user"));
}

#[tokio::test]
async fn every_api_route_but_health_and_version_needs_a_token() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    for (method, path) in [
        (Method::GET, "/api/v2/dags"),
        (Method::GET, "/api/v2/dags/etl"),
        (Method::POST, "/api/v2/dags/etl/dagRuns"),
        (Method::GET, "/api/v2/dags/etl/dagRuns/r1/taskInstances/extract/logs/1"),
        (Method::GET, "/api/v2/pools"),
        (Method::DELETE, "/api/v2/pools/default_pool"),
        (Method::GET, "/api/v2/gust/deadLetters"),
    ] {
        let reply = api.send_as(None, method.clone(), path, None).await;
        assert_bearer_challenge(&reply);
        assert!(reply.json()["detail"].as_str().unwrap().contains("/auth/token"), "{method} {path}");
    }
    for public in ["/api/v2/monitor/health", "/api/v2/version"] {
        let reply = api.send_as(None, Method::GET, public, None).await;
        assert_ne!(reply.status, StatusCode::UNAUTHORIZED, "{public}: {}", reply.text());
    }
}

#[tokio::test]
async fn a_garbage_or_foreign_token_is_a_401() {
    let api = TestApi::start().await;
    assert_bearer_challenge(&api.send_as(Some("garbage"), Method::GET, "/api/v2/dags", None).await);
    let foreign = gust_webapi::auth::Auth::with_secret(&[1; 32], Duration::from_secs(60)).issue("admin", Role::Admin);
    assert_bearer_challenge(&api.send_as(Some(&foreign.unwrap()), Method::GET, "/api/v2/dags", None).await);
    let request = axum::http::Request::get("/api/v2/dags")
        .header(header::AUTHORIZATION, format!("Basic {}", api.admin_token))
        .body(axum::body::Body::empty())
        .unwrap();
    assert_bearer_challenge(&api.send_raw(request).await);
}

#[tokio::test]
async fn an_expired_token_is_a_401_that_says_so() {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let claims = Claims { sub: ADMIN_USER.into(), role: Role::Admin, iat: now - 7200, exp: now - 3600 };
    let secret = [9u8; 32];
    let api = TestApi::start_with(|state| {
        state.with_auth(gust_webapi::auth::Auth::with_secret(&secret, Duration::from_secs(60)))
    })
    .await;
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&secret),
    )
    .unwrap();
    let reply = api.send_as(Some(&expired), Method::GET, "/api/v2/dags", None).await;
    assert_bearer_challenge(&reply);
    assert!(reply.json()["detail"].as_str().unwrap().contains("expired"), "{}", reply.text());
}

#[tokio::test]
async fn a_viewer_reads_but_cannot_trigger_pause_or_change_pools() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    let viewer = api.token_for(Role::Viewer).await;
    let dags = api.send_as(Some(&viewer), Method::GET, "/api/v2/dags/etl", None).await;
    assert_eq!(dags.status, StatusCode::OK, "{}", dags.text());
    let writes = [
        (Method::POST, "/api/v2/dags/etl/dagRuns", r#"{"conf": {}}"#, "operator"),
        (Method::PATCH, "/api/v2/dags/etl", r#"{"is_paused": true}"#, "operator"),
        (Method::POST, "/api/v2/dags/etl/clearTaskInstances", r#"{"dry_run": true}"#, "operator"),
        (Method::PATCH, "/api/v2/pools/default_pool", r#"{"slots": 5}"#, "admin"),
        (Method::POST, "/api/v2/pools", r#"{"name": "p", "slots": 1}"#, "admin"),
    ];
    for (method, path, body, needed) in writes {
        let detail =
            api.send_as(Some(&viewer), method.clone(), path, Some(body)).await.assert_error(StatusCode::FORBIDDEN);
        assert!(detail.contains(&format!("needs the {needed} role")), "{method} {path}: {detail}");
    }
}

#[tokio::test]
async fn an_operator_triggers_and_pauses_but_cannot_create_or_change_pools() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    let operator = api.token_for(Role::Operator).await;
    let run = api.send_as(Some(&operator), Method::POST, "/api/v2/dags/etl/dagRuns", Some(r#"{"conf": {}}"#)).await;
    assert_eq!(run.status, StatusCode::OK, "{}", run.text());
    let paused = api.send_as(Some(&operator), Method::PATCH, "/api/v2/dags/etl", Some(r#"{"is_paused": true}"#)).await;
    assert_eq!(paused.status, StatusCode::OK, "{}", paused.text());
    let pool = r#"{"name": "gpu", "slots": 1}"#;
    let detail = api
        .send_as(Some(&operator), Method::POST, "/api/v2/pools", Some(pool))
        .await
        .assert_error(StatusCode::FORBIDDEN);
    assert!(detail.contains("admin") && detail.contains("operator"), "{detail}");
    api.send_as(Some(&operator), Method::DELETE, "/api/v2/pools/gpu", None).await.assert_error(StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_admin_creates_changes_and_deletes_pools() {
    let api = TestApi::start().await;
    let admin = api.token_for(Role::Admin).await;
    let pool = r#"{"name": "gpu", "slots": 1}"#;
    assert_eq!(api.send_as(Some(&admin), Method::POST, "/api/v2/pools", Some(pool)).await.status, StatusCode::CREATED);
    let patched = api.send_as(Some(&admin), Method::PATCH, "/api/v2/pools/gpu", Some(r#"{"slots": 2}"#)).await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());
    let deleted = api.send_as(Some(&admin), Method::DELETE, "/api/v2/pools/gpu", None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text());
}

#[tokio::test]
async fn repeated_failed_logins_are_rate_limited_per_user_with_retry_after() {
    let api = TestApi::start().await;
    for _ in 0..MAX_FAILED_LOGINS {
        login(&api, ADMIN_USER, "guess-guess").await.assert_error(StatusCode::UNAUTHORIZED);
    }
    let limited = login(&api, ADMIN_USER, ADMIN_PASSWORD).await;
    limited.assert_error(StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = limited.headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    api.token_for(Role::Viewer).await;
    let other_user = login(&api, "viewer-user", "password-of-a-user").await;
    assert_eq!(other_user.status, StatusCode::CREATED, "another user is not limited: {}", other_user.text());
}

#[tokio::test]
async fn a_successful_login_resets_the_failure_count() {
    let api = TestApi::start().await;
    for _ in 0..MAX_FAILED_LOGINS - 1 {
        login(&api, ADMIN_USER, "guess-guess").await.assert_error(StatusCode::UNAUTHORIZED);
    }
    assert_eq!(login(&api, ADMIN_USER, ADMIN_PASSWORD).await.status, StatusCode::CREATED);
    login(&api, ADMIN_USER, "guess-guess").await.assert_error(StatusCode::UNAUTHORIZED);
    assert_eq!(login(&api, ADMIN_USER, ADMIN_PASSWORD).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_malformed_login_body_is_a_4xx_json_error() {
    let api = TestApi::start().await;
    let reply = api.send_as(None, Method::POST, "/auth/token", Some(r#"{"username": "admin"}"#)).await;
    assert!(reply.status.is_client_error(), "{}", reply.status);
    reply.assert_error(reply.status);
}

#[tokio::test]
async fn create_user_makes_a_user_who_can_log_in_with_the_piped_password() {
    let api = TestApi::start().await;
    let run = |role: &str, stdin: &str| {
        // The real binary, as built by `cargo build --bins` (scripts/test does).
        let mut child = std::process::Command::new(gust_tests::processes::binary("gust-webapi"))
            .args(["create-user", "--username", "ops", "--role", role])
            .env("GUST__DATABASE__URL", api.database_url())
            .env_remove("GUST_NEW_USER_PASSWORD")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start gust-webapi create-user");
        use std::io::Write;
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let created = run("operator", "ops-password\n");
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    assert!(String::from_utf8_lossy(&created.stdout).contains("created user ops with role operator"));
    let reply = login(&api, "ops", "ops-password").await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    assert_eq!(api.auth.verify(reply.json()["access_token"].as_str().unwrap()).unwrap().role, Role::Operator);

    let bad_role = run("root", "ops-password\n");
    assert!(!bad_role.status.success());
    assert!(String::from_utf8_lossy(&bad_role.stderr).contains("viewer, operator or admin"));
}

/// A concrete path for a route template, with ids that name nothing.
fn concrete(route: &str) -> String {
    let mut path = String::new();
    for segment in route.split('/').skip(1) {
        path.push('/');
        path.push_str(match segment {
            "{backfill_id}" | "{try_number}" => "987654",
            s if s.starts_with('{') => "nothing-here",
            s => s,
        });
    }
    path
}

#[tokio::test]
async fn every_documented_route_is_401_without_a_token_403_below_its_role_and_open_at_it() {
    let api = TestApi::start().await;
    let viewer = api.token_for(Role::Viewer).await;
    let operator = api.token_for(Role::Operator).await;
    let tokens = [(Role::Viewer, viewer.as_str()), (Role::Operator, &operator), (Role::Admin, &api.admin_token)];
    let document = api.send_as(None, Method::GET, "/openapi.json", None).await.json();
    let mut checked = 0;
    for (route, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let path = concrete(route);
            let body = (method != Method::GET && method != Method::DELETE).then_some("{}");
            let Access::Role(needed) = required_access(&method, route) else { continue };
            let anonymous = api.send_as(None, method.clone(), &path, body).await;
            assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{method} {path} without a token");
            for (role, token) in tokens {
                let reply = api.send_as(Some(token), method.clone(), &path, body).await;
                if role < needed {
                    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{method} {path} as {role}: {}", reply.text());
                } else {
                    // A 403 for another reason than the role (the configuration is not exposed) is the handler's.
                    let refused_role = reply.status == StatusCode::FORBIDDEN && reply.text().contains("role");
                    assert!(
                        reply.status != StatusCode::UNAUTHORIZED && !refused_role,
                        "{method} {path} as {role} got {}: {}",
                        reply.status,
                        reply.text()
                    );
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} routes were checked");
}

#[tokio::test]
async fn a_cli_login_returns_a_token_that_lives_for_the_cli_lifetime() {
    let api = TestApi::start_with(|state| {
        state.with_auth(
            gust_webapi::auth::Auth::with_secret(&[5; 32], Duration::from_secs(86_400))
                .with_cli_lifetime(Duration::from_secs(120)),
        )
    })
    .await;
    let reply = cli_login(&api, ADMIN_USER, ADMIN_PASSWORD).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    assert_eq!(reply.headers[header::CONTENT_TYPE], "application/json", "airflowctl reads only this exact type");
    let body = reply.json();
    assert_eq!(body["expires_in"], 120, "{body}");
    let token = body["access_token"].as_str().expect("access_token, as airflowctl's LoginResponse needs");
    let claims = api.auth.verify(token).unwrap();
    assert_eq!((claims.sub.as_str(), claims.role, claims.exp - claims.iat), (ADMIN_USER, Role::Admin, 120));
    let dags = api.send_as(Some(token), Method::GET, "/api/v2/dags", None).await;
    assert_eq!(dags.status, StatusCode::OK, "{}", dags.text());
    assert_eq!(login(&api, ADMIN_USER, ADMIN_PASSWORD).await.json()["expires_in"], 86_400);
}

#[tokio::test]
async fn cli_logins_share_the_failed_login_limit_and_are_audited() {
    let api = TestApi::start().await;
    cli_login(&api, ADMIN_USER, "wrong-guess-1234").await.assert_error(StatusCode::UNAUTHORIZED);
    for _ in 1..MAX_FAILED_LOGINS {
        login(&api, ADMIN_USER, "guess-guess").await.assert_error(StatusCode::UNAUTHORIZED);
    }
    let limited = cli_login(&api, ADMIN_USER, ADMIN_PASSWORD).await;
    limited.assert_error(StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers.contains_key(header::RETRY_AFTER));
    let events = api.get("/api/v2/eventLogs?included_events=login_failed&limit=100").await;
    assert_eq!(events.status, StatusCode::OK, "{}", events.text());
    let events = events.json();
    assert_eq!(events["total_entries"], MAX_FAILED_LOGINS + 1, "{events}");
    assert!(!events.to_string().contains("wrong-guess-1234"), "{events}");
}

#[tokio::test]
async fn a_cli_login_body_must_be_exactly_username_and_password() {
    let api = TestApi::start().await;
    let body = json!({"username": ADMIN_USER, "password": ADMIN_PASSWORD, "remember": true}).to_string();
    let reply = api.send_as(None, Method::POST, "/auth/token/cli", Some(&body)).await;
    reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    let problem = &reply.json()["detail"][0];
    assert_eq!((&problem["loc"], &problem["type"]), (&json!(["body", "remember"]), &json!("extra_forbidden")));
    let missing = api.send_as(None, Method::POST, "/auth/token/cli", Some(r#"{"username": "admin"}"#)).await;
    assert!(missing.assert_error(StatusCode::UNPROCESSABLE_ENTITY).contains("body.password"));
}

#[tokio::test]
async fn the_login_redirect_goes_to_the_sign_in_page_and_passes_on_only_a_path_of_this_server() {
    let api = TestApi::start().await;
    let go = |query: &'static str| api.send_as(None, Method::GET, query, None);
    assert_eq!(redirect_target(&go("/api/v2/auth/login").await), "/login");
    assert_eq!(redirect_target(&go("/api/v2/auth/login?next=").await), "/login");
    assert_eq!(
        redirect_target(&go("/api/v2/auth/login?next=%2Fdags%2Fetl%3Ftab%3Dgrid").await),
        "/login?next=%2Fdags%2Fetl%3Ftab%3Dgrid"
    );
    for unsafe_next in [
        "https://evil.example/",
        "//evil.example/",
        "/%2F%2Fevil.example",
        "/%5Cevil.example",
        "/%09/evil.example",
        "javascript:alert(1)",
    ] {
        let reply = api.send_as(None, Method::GET, &format!("/api/v2/auth/login?next={unsafe_next}"), None).await;
        assert!(reply.assert_error(StatusCode::BAD_REQUEST).contains("unsafe next"), "{unsafe_next}");
    }
}

#[tokio::test]
async fn the_logout_redirect_clears_the_session_cookie_and_goes_to_the_sign_in_page() {
    let api = TestApi::start().await;
    let reply = api.send_as(Some(&api.admin_token), Method::GET, "/api/v2/auth/logout", None).await;
    assert_eq!(redirect_target(&reply), "/login");
    let cookie = reply.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.starts_with("gust_session=;") && cookie.contains("Max-Age=0"), "{cookie}");
    let anonymous = api.send_as(None, Method::GET, "/api/v2/auth/logout", None).await;
    assert_eq!(redirect_target(&anonymous), "/login");
}
