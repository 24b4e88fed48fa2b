//! Bad requests get a JSON error a person can act on, never a 500, a panic or
//! a plain-text rejection. Runs against the real PostgreSQL on 127.0.0.1:5432.

use axum::{
    body::Body,
    http::{header, Method, Request, StatusCode},
};
use gust_tests::api::{TestApi, ETL_DAG};
use serde_json::json;

#[tokio::test]
async fn unknown_dag_is_a_404_with_a_detail() {
    let api = TestApi::start().await;
    let detail = api.get("/api/v2/dags/nope").await.assert_error(StatusCode::NOT_FOUND);
    assert_eq!(detail, "DAG `nope` not found");
    let runs = api.get("/api/v2/dags/nope/dagRuns").await.assert_error(StatusCode::NOT_FOUND);
    assert!(runs.contains("`nope`"), "{runs}");
    let trigger = api.send_json(Method::POST, "/api/v2/dags/nope/dagRuns", "{}").await;
    assert!(trigger.assert_error(StatusCode::NOT_FOUND).contains("`nope`"));
}

#[tokio::test]
async fn unknown_run_and_task_instance_are_404s_naming_what_is_missing() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    let run = api.get("/api/v2/dags/etl/dagRuns/r1").await.assert_error(StatusCode::NOT_FOUND);
    assert_eq!(run, "DAG run `r1` of DAG `etl` not found");
    let created = api.send_json(Method::POST, "/api/v2/dags/etl/dagRuns", r#"{"dag_run_id": "r1"}"#).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text());
    let ti = api.get("/api/v2/dags/etl/dagRuns/r1/taskInstances/ghost").await.assert_error(StatusCode::NOT_FOUND);
    assert!(ti.contains("`ghost`") && ti.contains("`r1`"), "{ti}");
    let logs = api.get("/api/v2/dags/etl/dagRuns/r1/taskInstances/ghost/logs/1").await;
    logs.assert_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn malformed_json_is_a_422_json_invalid_at_the_byte_where_it_breaks() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    let reply = api.send_json(Method::PATCH, "/api/v2/dags/etl", r#"{"is_paused": tru"#).await;
    let detail = reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(detail.to_lowercase().contains("json"), "{detail}");
    let problem = &reply.json()["detail"][0];
    assert_eq!(problem["type"], "json_invalid", "{problem}");
    assert_eq!(problem["loc"][0], "body", "{problem}");
    assert!(problem["loc"][1].as_u64().is_some_and(|at| (14..=17).contains(&at)), "{problem}");
}

/// The one problem of a 422 answer, after checking the answer has FastAPI's shape.
fn only_problem(reply: &gust_tests::api::Reply) -> serde_json::Value {
    reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    let detail = reply.json()["detail"].clone();
    assert_eq!(detail.as_array().map(Vec::len), Some(1), "{detail}");
    detail[0].clone()
}

#[tokio::test]
async fn a_body_that_does_not_fit_is_a_422_locating_each_problem_like_fastapi() {
    let api = TestApi::start().await;
    let pool = |body: &'static str| api.send_json(Method::POST, "/api/v2/pools", body);
    let missing = only_problem(&pool(r#"{"name": "etl"}"#).await);
    assert_eq!((&missing["loc"], &missing["type"]), (&json!(["body", "slots"]), &json!("missing")), "{missing}");
    assert!(missing["msg"].as_str().unwrap().contains("slots"), "{missing}");
    let extra = only_problem(&pool(r#"{"name": "etl", "slots": 1, "colour": "red"}"#).await);
    assert_eq!((&extra["loc"], &extra["type"]), (&json!(["body", "colour"]), &json!("extra_forbidden")), "{extra}");
    let wrong = only_problem(&pool(r#"{"name": "etl", "slots": "many"}"#).await);
    assert_eq!((&wrong["loc"], &wrong["type"]), (&json!(["body", "slots"]), &json!("int_parsing")), "{wrong}");
    assert!(wrong["msg"].as_str().unwrap().contains("`slots`"), "{wrong}");
    let array = only_problem(&pool(r#"[{"name": "etl", "slots": 1}]"#).await);
    assert_eq!(array["loc"], json!(["body"]), "{array}");
    assert!(array["msg"].as_str().unwrap().contains("JSON object"), "{array}");
}

#[tokio::test]
async fn a_query_or_path_value_that_does_not_parse_is_a_422_naming_the_parameter_and_value() {
    let api = TestApi::start().await;
    let limit = only_problem(&api.get("/api/v2/dags?limit=many").await);
    assert_eq!((&limit["loc"], &limit["type"]), (&json!(["query", "limit"]), &json!("int_parsing")), "{limit}");
    assert_eq!(limit["input"], "many", "{limit}");
    assert!(limit["msg"].as_str().unwrap().contains("`limit`"), "{limit}");
    let offset = only_problem(&api.get("/api/v2/pools?offset=1.5").await);
    assert_eq!((&offset["loc"], &offset["type"]), (&json!(["query", "offset"]), &json!("int_parsing")));
    let required = only_problem(&api.get("/api/v2/backfills").await);
    assert_eq!((&required["loc"], &required["type"]), (&json!(["query", "dag_id"]), &json!("missing")));
    let path = only_problem(&api.get("/api/v2/dags/etl/dagRuns/r1/taskInstances/t/logs/first").await);
    assert_eq!((&path["loc"], &path["type"]), (&json!(["path", "try_number"]), &json!("int_parsing")), "{path}");
    assert_eq!(path["input"], "first", "{path}");
    let id = only_problem(&api.get("/api/v2/backfills/one").await);
    assert_eq!(id["loc"], json!(["path", "backfill_id"]), "{id}");
}

#[tokio::test]
async fn errors_other_than_422_keep_a_string_detail() {
    let api = TestApi::start().await;
    for reply in [api.get("/api/v2/dags/nope").await, api.get("/api/v2/dags?order_by=colour").await] {
        assert!(reply.json()["detail"].is_string(), "{}", reply.text());
    }
}

#[tokio::test]
async fn a_patch_without_a_boolean_is_paused_is_a_400() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    for body in [r#"{"is_paused": "yes"}"#, "{}", "[true]"] {
        let detail = api.send_json(Method::PATCH, "/api/v2/dags/etl", body).await.assert_error(StatusCode::BAD_REQUEST);
        assert!(detail.contains("is_paused"), "{body}: {detail}");
    }
    let mask = api.send_json(Method::PATCH, "/api/v2/dags/etl?update_mask=owners", r#"{"is_paused": true}"#).await;
    assert!(mask.assert_error(StatusCode::BAD_REQUEST).contains("owners"));
}

#[tokio::test]
async fn a_wrongly_typed_trigger_field_is_a_4xx_json_error() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    let date = api.send_json(Method::POST, "/api/v2/dags/etl/dagRuns", r#"{"logical_date": 5}"#).await;
    let detail = date.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(detail.contains("logical_date"), "{detail}");
    let conf = api.send_json(Method::POST, "/api/v2/dags/etl/dagRuns", r#"{"conf": [1, 2]}"#).await;
    assert!(conf.assert_error(StatusCode::BAD_REQUEST).contains("conf"));
    let run_id = api.send_json(Method::POST, "/api/v2/dags/etl/dagRuns", r#"{"dag_run_id": "a/b"}"#).await;
    assert!(run_id.assert_error(StatusCode::BAD_REQUEST).contains("dag_run_id"));
}

#[tokio::test]
async fn a_body_of_another_content_type_or_none_at_all_is_a_422_as_fastapi_answers() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    let text = Request::patch("/api/v2/dags/etl")
        .header("content-type", "text/plain")
        .body(Body::from(r#"{"is_paused": true}"#))
        .unwrap();
    let detail = api.send(text).await.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(detail.contains("application/json"), "{detail}");
    let empty = Request::patch("/api/v2/dags/etl").body(Body::empty()).unwrap();
    let detail = api.send(empty).await.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(detail.contains("missing"), "{detail}");
    let untyped = Request::patch("/api/v2/dags/etl").body(Body::from(r#"{"is_paused": true}"#)).unwrap();
    let dag = api.send(untyped).await;
    assert_eq!(
        dag.status,
        StatusCode::OK,
        "a body without a Content-Type is read as JSON, as FastAPI does: {}",
        dag.text()
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413_json_error() {
    let api = TestApi::start_with_body_limit(64).await;
    api.add_dag(ETL_DAG).await;
    let big = format!(r#"{{"conf": {{"pad": "{}"}}}}"#, "x".repeat(200));
    let streamed = api.send_json(Method::POST, "/api/v2/dags/etl/dagRuns", &big).await;
    let detail = streamed.assert_error(StatusCode::PAYLOAD_TOO_LARGE);
    assert!(detail.contains("64") && detail.contains("GUST__WEBAPI__MAX_BODY_BYTES"), "{detail}");
    let announced = Request::post("/api/v2/dags/etl/dagRuns")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, big.len())
        .body(Body::from(big))
        .unwrap();
    let detail = api.send(announced).await.assert_error(StatusCode::PAYLOAD_TOO_LARGE);
    assert!(detail.contains("64"), "{detail}");
}

#[tokio::test]
async fn a_duplicate_run_id_is_a_409() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    let body = r#"{"dag_run_id": "once"}"#;
    assert_eq!(api.send_json(Method::POST, "/api/v2/dags/etl/dagRuns", body).await.status, StatusCode::OK);
    let detail = api.send_json(Method::POST, "/api/v2/dags/etl/dagRuns", body).await.assert_error(StatusCode::CONFLICT);
    assert!(detail.contains("etl"), "{detail}");
}

#[tokio::test]
async fn unknown_order_fields_are_400s_and_unparsable_or_out_of_range_values_422s() {
    let api = TestApi::start().await;
    api.get("/api/v2/dags?order_by=colour").await.assert_error(StatusCode::BAD_REQUEST);
    api.get("/api/v2/dags?limit=-1").await.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    api.get("/api/v2/dags?limit=many").await.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    api.get("/api/v2/dags?offset=ten").await.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    let path = api.get("/api/v2/dags/etl/dagRuns/r1/taskInstances/t/logs/first").await;
    path.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn an_unknown_route_is_a_404_json_error() {
    let api = TestApi::start().await;
    let detail = api.get("/api/v2/nothing/here").await.assert_error(StatusCode::NOT_FOUND);
    assert!(detail.contains("/api/v2/nothing/here"), "{detail}");
    // `/` is the web UI's home page now; a path nobody serves is still a JSON 404 for API clients.
    api.get("/nowhere").await.assert_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn airflow_areas_gust_has_no_equivalent_of_are_501s_naming_them() {
    let api = TestApi::start().await;
    let store = api.get("/api/v2/assets/3/state-store/watermark").await.assert_error(StatusCode::NOT_IMPLEMENTED);
    assert!(store.contains("state store is not part of gust"), "{store}");
    let hitl = api.get("/api/v2/dags/etl/dagRuns/r1/hitlDetails").await.assert_error(StatusCode::NOT_IMPLEMENTED);
    assert!(hitl.contains("human-in-the-loop"), "{hitl}");
    api.get("/api/v2/state-storez").await.assert_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_unsupported_method_is_a_405_json_error() {
    let api = TestApi::start().await;
    let request = Request::delete("/api/v2/importErrors").body(Body::empty()).unwrap();
    api.send(request).await.assert_error(StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn health_is_200_when_the_database_answers() {
    let api = TestApi::start().await;
    let reply = api.get("/api/v2/monitor/health").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let json = reply.json();
    assert_eq!(json["metadatabase"]["status"], "healthy");
    assert!(json["scheduler"]["status"].is_null());
    assert!(json["scheduler"]["latest_scheduler_heartbeat"].is_null());
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let api = TestApi::start().await;
    let fresh = api.get("/api/v2/version").await;
    assert!(fresh.headers.contains_key("x-request-id"));
    let request = Request::get("/api/v2/nope").header("x-request-id", "abc-123").body(Body::empty()).unwrap();
    let echoed = api.send(request).await;
    assert_eq!(echoed.headers.get("x-request-id").unwrap(), "abc-123");
    assert_eq!(
        echoed.headers.get(header::CONTENT_TYPE).unwrap(),
        "application/json",
        "errors stay JSON behind the request-id layer"
    );
}

#[tokio::test]
async fn an_unreachable_database_is_a_503_json_error_and_unhealthy() {
    // A pool on a port where nothing listens: every connection attempt is refused.
    let config: tokio_postgres::Config = "postgres://postgres@127.0.0.1:1/gust".parse().unwrap();
    let manager = deadpool_postgres::Manager::new(config, tokio_postgres::NoTls);
    let pool = deadpool_postgres::Pool::builder(manager).max_size(1).build().unwrap();
    let state = gust_webapi::AppState::new(pool);
    let token = state.auth.issue("admin", gust_webapi::auth::Role::Admin).unwrap();
    let router = gust_webapi::router(state);
    let send = |path: &'static str| {
        let (router, token) = (router.clone(), token.clone());
        async move {
            use http_body_util::BodyExt;
            use tower::ServiceExt;
            let request = Request::get(path).header("authorization", format!("Bearer {token}")).body(Body::empty());
            let response = router.oneshot(request.unwrap()).await.unwrap();
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, serde_json::from_slice::<serde_json::Value>(&body).expect("a JSON body"))
        }
    };
    let (status, body) = send("/api/v2/dags").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("database"), "{body}");
    let (status, body) = send("/api/v2/monitor/health").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["metadatabase"]["status"], "unhealthy");
}

#[tokio::test]
async fn a_nul_character_in_a_query_path_or_body_is_a_bad_request_not_a_server_error() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    for (method, path, body) in [
        (Method::GET, "/api/v2/dags?dag_id_pattern=a%00b", None),
        (Method::GET, "/api/v2/dags/et%00l", None),
        (Method::POST, "/api/v2/variables", Some(r#"{"key": "k", "value": "a\u0000b"}"#)),
    ] {
        let reply = api.send_as(Some(&api.admin_token), method, path, body).await;
        let detail = reply.assert_error(StatusCode::BAD_REQUEST);
        assert!(detail.contains("NUL"), "{path}: {detail}");
    }
}
