//! The OpenAPI document and its docs page.

use axum::http::{Method, StatusCode};
use gust_tests::api::TestApi;

#[tokio::test]
async fn the_openapi_document_is_public_and_describes_every_route_with_its_security() {
    let api = TestApi::start().await;
    let reply = api.send_as(None, Method::GET, "/openapi.json", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let document = reply.json();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."), "{document}");
    let paths = document["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v2/dags", "get"),
        ("/api/v2/dags/{dag_id}/dagRuns", "post"),
        ("/api/v2/pools/{pool_name}", "delete"),
        ("/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/logs/{try_number}", "get"),
        ("/auth/token", "post"),
    ] {
        assert!(paths.get(path).and_then(|item| item.get(method)).is_some(), "{method} {path} is missing");
    }
    let list_dags = &paths["/api/v2/dags"]["get"];
    assert_eq!(list_dags["security"][0]["HTTPBearer"], serde_json::json!([]), "{list_dags}");
    assert!(list_dags["responses"]["401"].is_object() && list_dags["responses"]["200"].is_object());
    let health = &paths["/api/v2/monitor/health"]["get"];
    assert!(health.get("security").is_none(), "health is public: {health}");
    assert!(
        document["components"]["schemas"]["DagResponse"].is_object()
            || document["components"]["schemas"]["DAGResponse"].is_object()
    );
}

#[tokio::test]
async fn the_docs_page_is_public_html_that_loads_the_document() {
    let api = TestApi::start().await;
    let reply = api.send_as(None, Method::GET, "/docs", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.text().contains("<html") && reply.text().contains("gust API"),
        "{}",
        &reply.text()[..200.min(reply.text().len())]
    );
}
