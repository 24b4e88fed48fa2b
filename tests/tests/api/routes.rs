//! The `/api/v2` routes answer with Airflow's shapes. Runs against the real
//! PostgreSQL on 127.0.0.1:5432.

use axum::{
    body::Body,
    http::{header, Method, Request, StatusCode},
};
use chrono::Utc;
use gust_shared::db;
use gust_tests::api::{TestApi, ETL_DAG};
use serde_json::{json, Value};

async fn ok_json(reply: gust_tests::api::Reply) -> Value {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()
}

#[tokio::test]
async fn dags_are_listed_read_and_paused_in_airflows_shape() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    let list = ok_json(api.get("/api/v2/dags").await).await;
    assert_eq!(list["total_entries"], 1);
    let dag = &list["dags"][0];
    for field in [
        "dag_id",
        "dag_display_name",
        "is_paused",
        "is_stale",
        "fileloc",
        "file_token",
        "owners",
        "tags",
        "max_active_tasks",
        "max_consecutive_failed_dag_runs",
        "has_import_errors",
        "has_task_concurrency_limits",
        "is_backfillable",
        "timetable_partitioned",
        "timetable_periodic",
    ] {
        assert!(!dag[field].is_null(), "missing {field} in {dag}");
    }
    assert_eq!(dag["tags"], json!([{"name": "team-a", "dag_id": "etl", "dag_display_name": "etl"}]));
    assert_eq!(dag["timetable_summary"], "@daily");
    assert_eq!(dag["description"], "nightly load");
    assert_eq!(dag["dag_display_name"], "etl");
    assert_eq!(dag["is_stale"], false);
    assert_eq!(dag["fileloc"], "/dags/etl.yaml");
    assert_eq!(dag["relative_fileloc"], "etl.yaml");
    assert_eq!(dag["bundle_name"], "dags-folder");
    assert!(dag["next_dagrun_logical_date"].is_string(), "a scheduled DAG shows its next run: {dag}");
    assert!(dag["allowed_run_types"].is_null(), "every run type is allowed: {dag}");

    let paused = ok_json(api.send_json(Method::PATCH, "/api/v2/dags/etl", r#"{"is_paused": true}"#).await).await;
    assert_eq!(paused["is_paused"], true);
    let again = ok_json(api.get("/api/v2/dags/etl").await).await;
    assert_eq!(again["is_paused"], true);

    let page = ok_json(api.get("/api/v2/dags?limit=0").await).await;
    assert_eq!((page["dags"].as_array().unwrap().len(), page["total_entries"].as_i64()), (0, Some(1)));
}

#[tokio::test]
async fn triggering_a_dag_creates_a_queued_manual_run() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    let body = r#"{"logical_date": null, "conf": {"region": "eu"}, "note": "by hand"}"#;
    let run = ok_json(api.send_json(Method::POST, "/api/v2/dags/etl/dagRuns", body).await).await;
    assert_eq!(run["state"], "queued");
    assert_eq!(run["run_type"], "manual");
    assert_eq!(run["triggered_by"], "rest_api");
    assert_eq!(run["conf"], json!({"region": "eu"}));
    assert_eq!(run["note"], "by hand");
    assert!(run["logical_date"].is_null());
    assert!(run["duration"].is_null() && run["start_date"].is_null() && run["last_scheduling_decision"].is_null());
    assert!(run["run_after"].is_string() && run["queued_at"].is_string());
    let run_id = run["dag_run_id"].as_str().unwrap().to_string();
    assert!(run_id.starts_with("manual__"), "{run_id}");
    let versions = run["dag_versions"].as_array().unwrap();
    assert_eq!(versions.len(), 1, "{run}");
    assert_eq!(versions[0]["version_number"], 1);
    assert_eq!(versions[0]["id"], "00000000-0000-0000-0000-000000000001", "a UUID, as Airflow clients parse it");

    let encoded = run_id.replace(':', "%3A").replace('+', "%2B");
    let one = ok_json(api.get(&format!("/api/v2/dags/etl/dagRuns/{encoded}")).await).await;
    assert_eq!(one["dag_run_id"], run_id.as_str());
    let list = ok_json(api.get("/api/v2/dags/etl/dagRuns").await).await;
    assert_eq!(list["total_entries"], 1);
    assert_eq!(list["dag_runs"][0]["dag_run_id"], run_id.as_str());
}

#[tokio::test]
async fn a_logical_date_sets_the_data_interval() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    let body = r#"{"dag_run_id": "dated", "logical_date": "2026-02-03T04:05:06+02:00"}"#;
    let run = ok_json(api.send_json(Method::POST, "/api/v2/dags/etl/dagRuns", body).await).await;
    let logical = run["logical_date"].as_str().unwrap();
    assert!(logical.starts_with("2026-02-03T02:05:06"), "{logical}");
    assert_eq!(run["data_interval_start"], run["logical_date"]);
    assert_eq!(run["data_interval_end"], run["logical_date"]);
}

/// Creates run `r1` of `etl` with its task instances and makes `extract`
/// look like a worker ran it once, successfully, with three log lines.
/// (Plain SQL for the state, so the test does not depend on the worker's queries.)
async fn run_extract_once(api: &TestApi) {
    api.start_run(ETL_DAG, r#"{"dag_run_id": "r1"}"#).await;
    let client = api.pool.get().await.unwrap();
    let extract = db::task_instances::listing::get(&client, "etl", "r1", "extract", -1).await.unwrap().unwrap();
    client
        .execute(
            "UPDATE task_instances SET state = 'success', try_number = 1, hostname = 'worker-1', exit_code = 0, \
             queued_at = now(), start_date = now(), end_date = now() WHERE id = $1",
            &[&extract.id],
        )
        .await
        .unwrap();
    let now = Utc::now();
    let lines = [(now, "stdout", "first"), (now, "stderr", "second"), (now, "stdout", "third")];
    db::logs::append(&client, extract.id, 1, &lines).await.unwrap();
}

#[tokio::test]
async fn task_instances_of_a_run_are_listed_and_read() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    run_extract_once(&api).await;
    let list = ok_json(api.get("/api/v2/dags/etl/dagRuns/r1/taskInstances").await).await;
    assert_eq!(list["total_entries"], 2);
    let extract = ok_json(api.get("/api/v2/dags/etl/dagRuns/r1/taskInstances/extract").await).await;
    assert_eq!(extract["state"], "success");
    assert_eq!(extract["try_number"], 1);
    assert_eq!(extract["hostname"], "worker-1");
    assert_eq!(extract["exit_code"], 0);
    assert_eq!(extract["executor_config"], "{}");
    assert_eq!(extract["pool"], "default_pool");
    assert_eq!(extract["map_index"], -1);
    let load = ok_json(api.get("/api/v2/dags/etl/dagRuns/r1/taskInstances/load").await).await;
    assert!(load["state"].is_null(), "a task with no status yet has state null: {load}");
    let paged = ok_json(api.get("/api/v2/dags/etl/dagRuns/r1/taskInstances?limit=1&offset=1").await).await;
    assert_eq!((paged["task_instances"].as_array().unwrap().len(), paged["total_entries"].as_i64()), (1, Some(2)));
}

#[tokio::test]
async fn logs_of_a_try_come_as_json_pages_or_plain_text() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    run_extract_once(&api).await;
    let base = "/api/v2/dags/etl/dagRuns/r1/taskInstances/extract/logs";

    let page = ok_json(api.get(&format!("{base}/1?full_content=true")).await).await;
    let events: Vec<&str> = page["content"].as_array().unwrap().iter().map(|m| m["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["first", "second", "third"]);
    assert_eq!(page["content"][1]["level"], "error");
    let token = page["continuation_token"].as_str().expect("a token after lines").to_string();

    let after = ok_json(api.get(&format!("{base}/1?token={token}")).await).await;
    assert_eq!(after["content"], json!([]));
    assert_eq!(after["continuation_token"], token.as_str(), "polling keeps the token");

    let request = Request::get(format!("{base}/1")).header(header::ACCEPT, "text/plain").body(Body::empty()).unwrap();
    let text = api.send(request).await;
    assert_eq!(text.status, StatusCode::OK);
    assert_eq!(text.text(), "first\nsecond\nthird\n");
    assert!(!text.headers.contains_key("x-continuation-token"), "a finished try has nothing more to say");

    let missing = api.get(&format!("{base}/2")).await.assert_error(StatusCode::NOT_FOUND);
    assert!(missing.contains("only try 1"), "{missing}");
    api.get(&format!("{base}/0")).await.assert_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn import_errors_are_listed() {
    let api = TestApi::start().await;
    let client = api.pool.get().await.unwrap();
    db::import_errors::record(&client, "dags/broken.yaml", "dags/broken.yaml: not a valid DAG file").await.unwrap();
    let list = ok_json(api.get("/api/v2/importErrors").await).await;
    assert_eq!(list["total_entries"], 1);
    let error = &list["import_errors"][0];
    assert_eq!(error["filename"], "dags/broken.yaml");
    assert_eq!(error["bundle_name"], "dags-folder");
    assert!(error["stack_trace"].as_str().unwrap().contains("not a valid DAG file"));
    assert!(error["import_error_id"].is_i64());
}

#[tokio::test]
async fn the_version_is_the_crate_version_and_the_commit_it_was_built_from() {
    let api = TestApi::start().await;
    let version = ok_json(api.get("/api/v2/version").await).await;
    assert_eq!(version["version"], env!("CARGO_PKG_VERSION"));
    let commit = version["git_version"].as_str().unwrap_or_default();
    assert!(commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit()), "{version}");
}
