//! Triggering a run checks its `conf` against the DAG's declared params. Runs
//! against the real PostgreSQL on 127.0.0.1:5432.

use axum::http::{Method, StatusCode};
use gust_tests::api::TestApi;

const COUNTING_DAG: &str = r#"
dag_id: counting
params:
  count: {type: integer, default: 1}
  region: eu
tasks:
  - id: count
    operator: bash
    command: seq {{ params.count }}
"#;

const TRIGGER: &str = "/api/v2/dags/counting/dagRuns";

#[tokio::test]
async fn a_conf_value_of_the_wrong_type_is_rejected_naming_the_param() {
    let api = TestApi::start().await;
    api.add_dag(COUNTING_DAG).await;
    let reply = api.send_json(Method::POST, TRIGGER, r#"{"conf": {"count": "x"}}"#).await;
    let detail = reply.assert_error(StatusCode::BAD_REQUEST);
    assert!(detail.contains(r#"param `count` must be an integer, got the string "x""#), "{detail}");
    assert!(detail.contains("DAG `counting`"), "{detail}");
    let runs = api.get(TRIGGER).await.json();
    assert_eq!(runs["total_entries"], 0, "a rejected trigger creates no run: {runs}");
}

#[tokio::test]
async fn a_conf_that_fits_the_params_creates_the_run_with_its_conf() {
    let api = TestApi::start().await;
    api.add_dag(COUNTING_DAG).await;
    let reply = api.send_json(Method::POST, TRIGGER, r#"{"conf": {"count": 5, "region": 7, "extra": true}}"#).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["conf"], serde_json::json!({"count": 5, "region": 7, "extra": true}));
    let defaults = api.send_json(Method::POST, TRIGGER, r#"{"dag_run_id": "no_conf"}"#).await;
    assert_eq!(defaults.status, StatusCode::OK, "{}", defaults.text());
}

#[tokio::test]
async fn a_required_param_missing_from_conf_is_rejected() {
    let api = TestApi::start().await;
    api.add_dag(
        "dag_id: manual\nparams: {env: {type: string, enum: [dev, prod]}}\ntasks:\n  - {id: a, operator: noop}\n",
    )
    .await;
    let path = "/api/v2/dags/manual/dagRuns";
    let detail = api.send_json(Method::POST, path, "{}").await.assert_error(StatusCode::BAD_REQUEST);
    assert!(detail.contains("param `env` is required"), "{detail}");
    let detail =
        api.send_json(Method::POST, path, r#"{"conf": {"env": "test"}}"#).await.assert_error(StatusCode::BAD_REQUEST);
    assert!(detail.contains(r#"param `env` must be one of "dev", "prod", got the string "test""#), "{detail}");
    let ok = api.send_json(Method::POST, path, r#"{"conf": {"env": "prod"}}"#).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
}
