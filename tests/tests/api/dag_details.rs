//! The DAG area of the API in Airflow 3.3.2's shapes: details with the next
//! run, tasks, versions, sources, tags, stats, warnings, favorites, pausing
//! many DAGs at once and asking for a file to be parsed again.

use axum::{
    body::Body,
    http::{header, Method, Request, StatusCode},
};
use chrono::{DateTime, TimeDelta, Utc};
use gust_shared::{dag::parse_dag_file, db};
use gust_tests::api::{TestApi, ETL_DAG};
use gust_webapi::auth::Role;
use serde_json::{json, Value};

const MANUAL_DAG: &str = "dag_id: manual\nstart_date: 2026-01-01\ntags: [ops, team-b]\ntasks:\n  - id: only\n    operator: noop\n    pool: gpu\n";

async fn ok(api: &TestApi, path: &str) -> Value {
    let reply = api.get(path).await;
    assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text());
    reply.json()
}

fn time(value: &Value) -> DateTime<Utc> {
    value.as_str().unwrap_or_else(|| panic!("not a date-time: {value}")).parse().unwrap()
}

#[tokio::test]
async fn dag_details_have_every_field_airflow_requires_and_the_next_run_the_scheduler_will_create() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    let details = ok(&api, "/api/v2/dags/etl/details").await;
    for field in [
        "dag_id",
        "dag_display_name",
        "is_paused",
        "is_stale",
        "last_parsed_time",
        "last_parse_duration",
        "last_expired",
        "bundle_name",
        "bundle_version",
        "relative_fileloc",
        "fileloc",
        "description",
        "timetable_summary",
        "timetable_description",
        "timetable_partitioned",
        "timetable_periodic",
        "tags",
        "max_active_tasks",
        "max_active_runs",
        "max_consecutive_failed_dag_runs",
        "has_task_concurrency_limits",
        "has_import_errors",
        "next_dagrun_logical_date",
        "next_dagrun_data_interval_start",
        "next_dagrun_data_interval_end",
        "next_dagrun_run_after",
        "allowed_run_types",
        "owners",
        "catchup",
        "dag_run_timeout",
        "asset_expression",
        "doc_md",
        "start_date",
        "end_date",
        "is_paused_upon_creation",
        "params",
        "render_template_as_native_obj",
        "template_search_path",
        "timezone",
        "last_parsed",
        "default_args",
        "is_backfillable",
        "file_token",
        "concurrency",
        "latest_dag_version",
    ] {
        assert!(details.get(field).is_some(), "`{field}` is missing from {details}");
    }
    assert_eq!((details["catchup"].clone(), details["timezone"].clone()), (json!(false), json!("UTC")));
    assert_eq!(details["latest_dag_version"]["version_number"], 1);
    assert_eq!(details["allowed_run_types"], Value::Null, "every run type is allowed");
    // @daily without catchup: the latest ended day is due (or, once run, the next one).
    let (start, end) =
        (time(&details["next_dagrun_data_interval_start"]), time(&details["next_dagrun_data_interval_end"]));
    assert_eq!(end - start, TimeDelta::days(1));
    assert_eq!(time(&details["next_dagrun_logical_date"]), start);
    assert_eq!(time(&details["next_dagrun_run_after"]), end);
    assert!(end <= Utc::now() + TimeDelta::days(1), "{details}");

    api.add_dag(MANUAL_DAG).await;
    let manual = ok(&api, "/api/v2/dags/manual").await;
    assert_eq!(manual["next_dagrun_run_after"], Value::Null, "a manual DAG has no next run");
    assert_eq!(manual["timetable_description"], "Never, external triggers only");
    api.get("/api/v2/dags/nope/details").await.assert_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn tasks_come_from_the_stored_definition_with_their_downstream_tasks_and_order() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    let tasks = ok(&api, "/api/v2/dags/etl/tasks").await;
    assert_eq!(tasks["total_entries"], 2);
    let extract = &tasks["tasks"][0];
    assert_eq!(extract["task_id"], "extract");
    assert_eq!(extract["operator_name"], "bash");
    assert_eq!(extract["downstream_task_ids"], json!(["load"]));
    assert_eq!(extract["retry_delay"], json!({"__type": "TimeDelta", "days": 0, "seconds": 300, "microseconds": 0}));
    assert_eq!((extract["pool"].clone(), extract["queue"].clone()), (json!("default_pool"), json!("default")));
    let reversed = ok(&api, "/api/v2/dags/etl/tasks?order_by=-task_id").await;
    assert_eq!(reversed["tasks"][0]["task_id"], "load");
    let load = ok(&api, "/api/v2/dags/etl/tasks/load").await;
    assert_eq!((load["trigger_rule"].clone(), load["retries"].clone()), (json!("all_success"), json!(0.0)));
    let unknown = api.get("/api/v2/dags/etl/tasks/nope").await.assert_error(StatusCode::NOT_FOUND);
    assert!(unknown.contains("`nope`"), "{unknown}");
    let bad = api.get("/api/v2/dags/etl/tasks?order_by=colour").await.assert_error(StatusCode::BAD_REQUEST);
    assert!(bad.contains("`colour`"), "{bad}");
}

#[tokio::test]
async fn versions_are_numbered_per_dag_and_each_keeps_its_source() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    let changed = ETL_DAG.replace("nightly load", "nightly load, v2");
    let dag = parse_dag_file("dags/etl.yaml", &changed).unwrap();
    let client = api.pool.get().await.unwrap();
    db::dags::upsert(&client, &dag, "/dags/etl.yaml", "hash-2", &changed, false).await.unwrap();

    let versions = ok(&api, "/api/v2/dags/etl/dagVersions").await;
    assert_eq!(versions["total_entries"], 2);
    let numbers: Vec<&Value> =
        versions["dag_versions"].as_array().unwrap().iter().map(|v| &v["version_number"]).collect();
    assert_eq!(numbers, [&json!(1), &json!(2)]);
    assert_eq!(versions["dag_versions"][0]["bundle_name"], "dags-folder");
    assert_eq!(
        ok(&api, "/api/v2/dags/etl/dagVersions?order_by=-version_number&limit=1").await["dag_versions"][0]
            ["version_number"],
        2
    );
    assert_eq!(ok(&api, "/api/v2/dags/etl/dagVersions/1").await["dag_id"], "etl");
    api.get("/api/v2/dags/etl/dagVersions/9").await.assert_error(StatusCode::NOT_FOUND);

    let latest = ok(&api, "/api/v2/dagSources/etl").await;
    assert_eq!((latest["content"].as_str().unwrap(), latest["version_number"].clone()), (changed.as_str(), json!(2)));
    let first = ok(&api, "/api/v2/dagSources/etl?version_number=1").await;
    assert_eq!(first["content"].as_str().unwrap(), ETL_DAG);
    let request = Request::get("/api/v2/dagSources/etl?version_number=1")
        .header(header::ACCEPT, "text/plain")
        .body(Body::empty())
        .unwrap();
    let text = api.send(request).await;
    assert_eq!((text.status, text.text()), (StatusCode::OK, ETL_DAG.to_string()));
    api.get("/api/v2/dagSources/etl?version_number=7").await.assert_error(StatusCode::NOT_FOUND);
    api.get("/api/v2/dagSources/nope").await.assert_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn tags_stats_and_warnings_are_listed_in_airflows_shapes() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    api.add_dag(MANUAL_DAG).await;
    let tags = ok(&api, "/api/v2/dagTags").await;
    assert_eq!(tags, json!({"tags": ["ops", "team-a", "team-b"], "total_entries": 3}));
    assert_eq!(
        ok(&api, "/api/v2/dagTags?tag_name_pattern=TEAM&order_by=-name&limit=1").await,
        json!({"tags": ["team-b"], "total_entries": 2})
    );

    api.start_run(ETL_DAG, r#"{"logical_date": null}"#).await;
    let stats = ok(&api, "/api/v2/dagStats").await;
    assert_eq!(stats["total_entries"], 1, "only DAGs with runs: {stats}");
    assert_eq!(stats["dags"][0]["dag_id"], "etl");
    let states: Vec<&Value> = stats["dags"][0]["stats"].as_array().unwrap().iter().map(|s| &s["state"]).collect();
    assert_eq!(states, [&json!("queued"), &json!("running"), &json!("success"), &json!("failed")]);
    assert_eq!(ok(&api, "/api/v2/dagStats?dag_ids=manual").await, json!({"dags": [], "total_entries": 0}));

    let warnings = ok(&api, "/api/v2/dagWarnings").await;
    assert_eq!(warnings["total_entries"], 1, "{warnings}");
    let warning = &warnings["dag_warnings"][0];
    assert_eq!(
        (warning["dag_id"].clone(), warning["warning_type"].clone()),
        (json!("manual"), json!("non-existent pool"))
    );
    assert!(warning["message"].as_str().unwrap().contains("'gpu'"), "{warning}");
    assert_eq!(ok(&api, "/api/v2/dagWarnings?warning_type=asset%20conflict").await["total_entries"], 0);
    assert_eq!(ok(&api, "/api/v2/dagWarnings?dag_id=etl").await["total_entries"], 0);
    let bad = api.get("/api/v2/dagWarnings?warning_type=bogus").await.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.contains("non-existent pool"), "{bad}");
    let client = api.pool.get().await.unwrap();
    client.execute("INSERT INTO pools (name, slots) VALUES ('gpu', 2)", &[]).await.unwrap();
    assert_eq!(ok(&api, "/api/v2/dagWarnings").await["total_entries"], 0, "creating the pool ends the warning");
}

#[tokio::test]
async fn favorites_are_per_user_and_filter_the_dag_list() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    api.add_dag(MANUAL_DAG).await;
    let viewer = api.token_for(Role::Viewer).await;
    let favorite = api.send_as(Some(&viewer), Method::POST, "/api/v2/dags/etl/favorite", None).await;
    assert_eq!(favorite.status, StatusCode::NO_CONTENT, "{}", favorite.text());
    let again = api.send_as(Some(&viewer), Method::POST, "/api/v2/dags/etl/favorite", None).await;
    assert_eq!(again.status, StatusCode::NO_CONTENT, "marking twice is fine");

    let mine = api.send_as(Some(&viewer), Method::GET, "/api/v2/dags?is_favorite=true", None).await.json();
    assert_eq!((mine["total_entries"].clone(), mine["dags"][0]["dag_id"].clone()), (json!(1), json!("etl")));
    let others = api.send_as(Some(&viewer), Method::GET, "/api/v2/dags?is_favorite=false", None).await.json();
    assert_eq!(others["dags"][0]["dag_id"], "manual");
    assert_eq!(ok(&api, "/api/v2/dags?is_favorite=true").await["total_entries"], 0, "the admin marked none");
    let details = api.send_as(Some(&viewer), Method::GET, "/api/v2/dags/etl/details", None).await.json();
    assert_eq!(details["is_favorite"], true);

    let unfavorite = api.send_as(Some(&viewer), Method::POST, "/api/v2/dags/etl/unfavorite", None).await;
    assert_eq!(unfavorite.status, StatusCode::NO_CONTENT);
    api.send_as(Some(&viewer), Method::POST, "/api/v2/dags/etl/unfavorite", None)
        .await
        .assert_error(StatusCode::CONFLICT);
    api.send_as(Some(&viewer), Method::POST, "/api/v2/dags/nope/favorite", None)
        .await
        .assert_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn patching_dags_in_bulk_pauses_every_dag_the_filters_keep_and_needs_a_pattern() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    api.add_dag(MANUAL_DAG).await;
    let paused = api.send_json(Method::PATCH, "/api/v2/dags?dag_id_pattern=~&limit=1", r#"{"is_paused": true}"#).await;
    assert_eq!(paused.status, StatusCode::OK, "{}", paused.text());
    let body = paused.json();
    assert_eq!((body["total_entries"].clone(), body["dags"][0]["is_paused"].clone()), (json!(2), json!(true)));
    assert_eq!(ok(&api, "/api/v2/dags?paused=true").await["total_entries"], 2, "beyond the page too");

    let one = api.send_json(Method::PATCH, "/api/v2/dags?dag_id_prefix_pattern=man", r#"{"is_paused": false}"#).await;
    assert_eq!(one.json()["total_entries"], 1);
    assert_eq!(ok(&api, "/api/v2/dags/manual").await["is_paused"], false);
    assert_eq!(ok(&api, "/api/v2/dags/etl").await["is_paused"], true);

    let bare = api.send_json(Method::PATCH, "/api/v2/dags", r#"{"is_paused": false}"#).await;
    assert!(bare.assert_error(StatusCode::BAD_REQUEST).contains("dag_id_pattern"));
    let viewer = api.token_for(Role::Viewer).await;
    let forbidden = api
        .send_as(Some(&viewer), Method::PATCH, "/api/v2/dags?dag_id_pattern=~", Some(r#"{"is_paused": true}"#))
        .await;
    forbidden.assert_error(StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn reparsing_a_dag_file_answers_201_for_a_known_token_and_404_otherwise() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    let token = ok(&api, "/api/v2/dags/etl").await["file_token"].as_str().unwrap().to_string();
    let reply = api.send_as(Some(&api.admin_token), Method::PUT, &format!("/api/v2/parseDagFile/{token}"), None).await;
    assert_eq!((reply.status, reply.json()), (StatusCode::CREATED, Value::Null));
    api.send_as(Some(&api.admin_token), Method::PUT, "/api/v2/parseDagFile/abcd", None)
        .await
        .assert_error(StatusCode::NOT_FOUND);
    let viewer = api.token_for(Role::Viewer).await;
    api.send_as(Some(&viewer), Method::PUT, &format!("/api/v2/parseDagFile/{token}"), None)
        .await
        .assert_error(StatusCode::FORBIDDEN);
}
