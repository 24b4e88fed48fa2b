//! Sessions, CSRF, security headers and escaping: what every UI page and form must do.

use axum::{
    body::Body,
    http::{header, Method, Request, StatusCode},
};
use gust_tests::api::{TestApi, ADMIN_PASSWORD, ADMIN_USER, ETL_DAG};

/// A DAG whose user-controlled texts are hostile.
const HOSTILE_DAG: &str = r#"
dag_id: hostile
description: "<script>alert('description')</script>"
schedule: null
start_date: 2026-01-01
tags: ["\"><img src=x onerror=alert(1)>"]
default_args: {owner: "<b>owner</b>"}
tasks:
  - id: only
    operator: noop
"#;

/// Logs in through the login form; returns the session cookie's `Set-Cookie` value and the redirect target.
async fn log_in(api: &TestApi, password: &str, next: &str) -> (StatusCode, Option<String>, Option<String>, String) {
    let body = format!("username={ADMIN_USER}&password={password}&next={}", next.replace('/', "%2F"));
    let request = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    let reply = api.send_raw(request).await;
    let cookie = reply.headers.get(header::SET_COOKIE).map(|v| v.to_str().unwrap().to_string());
    let location = reply.headers.get(header::LOCATION).map(|v| v.to_str().unwrap().to_string());
    (reply.status, cookie, location, reply.text())
}

#[tokio::test]
async fn a_page_without_a_session_redirects_to_the_login_page_and_back() {
    let api = TestApi::start().await;
    let reply = api.send_raw(Request::get("/dags?q=etl").body(Body::empty()).unwrap()).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.headers[header::LOCATION], "/login?next=%2Fdags%3Fq%3Detl");

    let htmx = Request::get("/dags").header("hx-request", "true").body(Body::empty()).unwrap();
    let reply = api.send_raw(htmx).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.headers["hx-redirect"], "/login?next=%2Fdags");

    let login = api.page_as(None, "/login?next=/dags").await.assert_ok();
    assert_eq!(login.attrs("input[name=next]", "value"), vec!["/dags"]);
}

#[tokio::test]
async fn logging_in_sets_an_http_only_strict_cookie_that_opens_pages_and_logging_out_clears_it() {
    let api = TestApi::start().await;
    let (status, cookie, location, _) = log_in(&api, ADMIN_PASSWORD, "/dags").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location.as_deref(), Some("/dags"));
    let cookie = cookie.expect("a session cookie");
    assert!(cookie.starts_with("gust_session="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} missing from {cookie}");
    }
    assert!(!cookie.contains("Secure"), "no Secure flag over plain HTTP, or the browser would drop it");
    let token = cookie.trim_start_matches("gust_session=").split(';').next().unwrap().to_string();

    let request = Request::get("/dags").header(header::COOKIE, format!("gust_session={token}")).body(Body::empty());
    let reply = api.send_raw(request.unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(reply.text().contains("Sign out"));

    let page = api.page("/dags").await.assert_ok();
    let csrf = page.attrs("form[action='/logout'] input[name=csrf]", "value");
    assert_eq!(csrf.len(), 1);
    // The cookie session's own CSRF token, as its pages carry it.
    let cookie_page = {
        let request = Request::get("/dags").header(header::COOKIE, format!("gust_session={token}"));
        api.send_raw(request.body(Body::empty()).unwrap()).await.text()
    };
    let own_csrf = scraper::Html::parse_document(&cookie_page)
        .select(&scraper::Selector::parse("form[action='/logout'] input[name=csrf]").unwrap())
        .next()
        .and_then(|e| e.value().attr("value").map(str::to_string))
        .unwrap();
    let logout = api.post_form_with_cookie(&token, "http://gust.test", "/logout", &[("csrf", &own_csrf)]).await;
    assert_eq!(logout.status, StatusCode::SEE_OTHER, "{}", logout.body);
    let cleared = logout.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cleared.starts_with("gust_session=;") && cleared.contains("Max-Age=0"), "{cleared}");
}

#[tokio::test]
async fn a_wrong_password_shows_the_login_form_again_with_the_reason() {
    let api = TestApi::start().await;
    let (status, cookie, _, body) = log_in(&api, "not-the-password", "/dags").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(cookie.is_none());
    assert!(body.contains("invalid username or password"), "{body}");
    assert!(body.contains(r#"value="/dags""#), "the form keeps where to go next");
}

#[tokio::test]
async fn cookie_writes_need_the_sessions_csrf_token_and_a_same_origin() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    let (_, cookie, _, _) = log_in(&api, ADMIN_PASSWORD, "/").await;
    let token = cookie.unwrap().trim_start_matches("gust_session=").split(';').next().unwrap().to_string();
    let page = {
        let request = Request::get("/dags").header(header::COOKIE, format!("gust_session={token}"));
        scraper::Html::parse_document(&api.send_raw(request.body(Body::empty()).unwrap()).await.text())
    };
    let csrf = page
        .select(&scraper::Selector::parse("form[action='/dags/etl/pause'] input[name=csrf]").unwrap())
        .next()
        .and_then(|e| e.value().attr("value").map(str::to_string))
        .expect("the pause form carries the CSRF token");

    let without_token =
        api.post_form_with_cookie(&token, "http://gust.test", "/dags/etl/pause", &[("is_paused", "true")]).await;
    assert_eq!(without_token.status, StatusCode::FORBIDDEN);
    let wrong_token = api
        .post_form_with_cookie(&token, "http://gust.test", "/dags/etl/pause", &[("is_paused", "true"), ("csrf", "00")])
        .await;
    assert_eq!(wrong_token.status, StatusCode::FORBIDDEN);
    let cross_site = api
        .post_form_with_cookie(
            &token,
            "http://evil.example",
            "/dags/etl/pause",
            &[("is_paused", "true"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(cross_site.status, StatusCode::FORBIDDEN);
    assert!(cross_site.body.contains("cross-site request refused"), "{}", cross_site.body);
    assert_eq!(api.get("/api/v2/dags/etl").await.json()["is_paused"], false, "no refused write changed anything");

    let good = api
        .post_form_with_cookie(&token, "http://gust.test", "/dags/etl/pause", &[("is_paused", "true"), ("csrf", &csrf)])
        .await;
    assert_eq!(good.status, StatusCode::SEE_OTHER, "{}", good.body);
    assert_eq!(api.get("/api/v2/dags/etl").await.json()["is_paused"], true);
}

#[tokio::test]
async fn every_page_sends_a_strict_content_security_policy_and_no_inline_script_or_style() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    for path in ["/", "/dags", "/login"] {
        let page = api.page(path).await.assert_ok();
        let csp = page.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        for directive in ["default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"] {
            assert!(csp.contains(directive), "{path}: {directive} missing from {csp}");
        }
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
        assert_eq!(page.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(page.headers[header::X_FRAME_OPTIONS], "DENY");
        assert!(page.headers.contains_key(header::REFERRER_POLICY));
        assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
        assert!(page.select("script").iter().all(|s| s.value().attr("src").is_some()), "{path}: inline script");
        assert!(!page.has("[style]"), "{path}: inline style attribute");
    }
}

#[tokio::test]
async fn hostile_dag_texts_arrive_as_text() {
    let api = TestApi::start().await;
    api.add_dag(HOSTILE_DAG).await;
    let page = api.page("/dags").await.assert_ok();
    assert!(!page.body.contains("<script>alert"), "a script tag reached the page");
    assert!(!page.body.contains("<img src=x"), "an img tag reached the page");
    assert!(!page.body.contains("<b>owner"), "a b tag reached the page");
    assert!(!page.has("img") && !page.has("td b"));
    let row = page.texts("table.dags tbody tr").remove(0);
    assert!(row.contains("<script>alert('description')</script>"), "the description is shown as text: {row}");
    assert!(row.contains("\"><img src=x onerror=alert(1)>"), "the tag is shown as text: {row}");
    assert!(row.contains("<b>owner</b>"), "the owner is shown as text: {row}");
}

#[tokio::test]
async fn static_files_are_cached_for_good_and_unknown_ones_are_404() {
    let api = TestApi::start().await;
    let page = api.page("/dags").await.assert_ok();
    let css = page.attrs("link[rel=stylesheet]", "href").remove(0);
    let js = page.attrs("script[src]", "src").remove(0);
    for asset in [css, js] {
        let reply = api.send_raw(Request::get(&asset).body(Body::empty()).unwrap()).await;
        assert_eq!(reply.status, StatusCode::OK, "{asset}");
        assert_eq!(reply.headers[header::CACHE_CONTROL], "public, max-age=31536000, immutable");
    }
    let missing = api.send_raw(Request::get("/static/nope.js").body(Body::empty()).unwrap()).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let licence = api.send_raw(Request::get("/static/htmx-LICENSE.txt").body(Body::empty()).unwrap()).await;
    assert!(licence.text().contains("Zero-Clause BSD"));
}

#[tokio::test]
async fn pages_accept_the_bearer_header_like_the_api_and_refuse_a_bad_one() {
    let api = TestApi::start().await;
    assert_eq!(api.page("/").await.status, StatusCode::OK);
    let reply = api.send_as(Some("not-a-token"), Method::GET, "/", None).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert!(reply.headers[header::LOCATION].to_str().unwrap().starts_with("/login?next=%2F"));
}

#[tokio::test]
async fn a_browser_asking_for_an_unknown_page_gets_an_html_404_and_the_api_keeps_json() {
    let api = TestApi::start().await;
    let request = Request::get("/no/such/page").header(header::ACCEPT, "text/html,application/xhtml+xml");
    let reply = api.send_raw(request.body(Body::empty()).unwrap()).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    assert!(reply.headers.contains_key(header::CONTENT_SECURITY_POLICY));
    assert!(reply.text().contains("there is no page at /no/such/page"), "{}", reply.text());
    let request = Request::get("/api/v2/nothing").header(header::ACCEPT, "text/html");
    api.send_raw(request.body(Body::empty()).unwrap()).await.assert_error(StatusCode::NOT_FOUND);
}
