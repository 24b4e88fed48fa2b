//! The webapi's `GET /metrics`: open by default, behind `GUST__METRICS__TOKEN`
//! when one is set (its own token, not an API token), and requests counted by
//! the route pattern axum matched, never by the raw path.

use axum::{
    body::Body,
    http::{header, Method, Request, StatusCode},
};
use gust_tests::{
    api::{TestApi, ETL_DAG},
    metrics::{assert_promtool_accepts, label_sets, sample},
};

const TOKEN: &str = "metrics-token-of-this-test";

/// `GET /metrics` with `bearer`, or with no `Authorization` header.
fn scrape(bearer: Option<&str>) -> Request<Body> {
    let mut request = Request::get("/metrics");
    if let Some(bearer) = bearer {
        request = request.header(header::AUTHORIZATION, format!("Bearer {bearer}"));
    }
    request.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn metrics_with_a_token_set_answer_401_without_it_and_200_with_it() {
    let api = TestApi::start_with(|state| state.with_metrics_token(Some(TOKEN.into()))).await;
    let refused = api.send_raw(scrape(None)).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.text());
    assert!(refused.text().contains("GUST__METRICS__TOKEN"), "the refusal says which setting: {}", refused.text());
    assert_eq!(api.send_raw(scrape(Some("not-the-token"))).await.status, StatusCode::UNAUTHORIZED);
    let admin = api.token_for(gust_webapi::auth::Role::Admin).await;
    assert_eq!(
        api.send_raw(scrape(Some(&admin))).await.status,
        StatusCode::UNAUTHORIZED,
        "an API token is not the metrics token"
    );
    let allowed = api.send_raw(scrape(Some(TOKEN))).await;
    assert_eq!(allowed.status, StatusCode::OK, "{}", allowed.text());
    assert!(allowed.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    assert!(allowed.text().contains("# TYPE gust_http_requests_total counter"), "{}", allowed.text());
}

#[tokio::test]
async fn requests_are_counted_by_route_pattern_method_and_status_never_by_raw_path() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    let dag_id = "etl";
    for _ in 0..3 {
        assert_eq!(api.get(&format!("/api/v2/dags/{dag_id}")).await.status, StatusCode::OK);
    }
    assert_eq!(api.get("/api/v2/dags/missing_dag").await.status, StatusCode::NOT_FOUND);
    assert_eq!(api.get("/no/such/page/at/all").await.status, StatusCode::NOT_FOUND);
    let wrong_login = r#"{"username": "admin", "password": "not-the-password"}"#;
    assert_eq!(
        api.send_as(None, Method::POST, "/auth/token", Some(wrong_login)).await.status,
        StatusCode::UNAUTHORIZED
    );

    let reply = api.send_raw(scrape(None)).await;
    assert_eq!(reply.status, StatusCode::OK, "open without GUST__METRICS__TOKEN");
    let text = reply.text();
    let requests = |route: &str, method: &str, status: &str| {
        sample(&text, "gust_http_requests_total", &[("route", route), ("method", method), ("status", status)])
    };
    assert_eq!(requests("/api/v2/dags/{dag_id}", "GET", "200"), 3.0, "{text}");
    assert_eq!(requests("/api/v2/dags/{dag_id}", "GET", "404"), 1.0, "{text}");
    assert_eq!(requests("unmatched", "GET", "404"), 1.0, "{text}");
    assert_eq!(requests("/auth/token", "POST", "401"), 1.0, "{text}");
    assert_eq!(sample(&text, "gust_logins_failed_total", &[]), 1.0);
    assert_eq!(
        sample(
            &text,
            "gust_http_request_duration_seconds_count",
            &[("route", "/api/v2/dags/{dag_id}"), ("method", "GET")]
        ),
        4.0
    );
    for labels in label_sets(&text, "gust_http_requests_total") {
        let route = &labels["route"];
        assert!(
            !route.contains(dag_id) && !route.contains("missing_dag") && !route.contains("no/such"),
            "raw path: {route}"
        );
    }
    assert_promtool_accepts(&text, "webapi");
}
