//! `GET /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances` across
//! runs and DAGs (`~`), with Airflow's filters, `order_by` and paging.
//! Runs against the real PostgreSQL on 127.0.0.1:5432; rows are arranged
//! with plain SQL.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use gust_tests::api::{TestApi, ETL_DAG};
use serde_json::Value;

/// One task, for a second DAG.
const WEEKLY_DAG: &str = r#"
dag_id: weekly
start_date: 2026-01-01
tasks:
  - id: send
    operator: noop
"#;

/// `etl` runs `r1` (logical date 2026-01-01) and `r2` (2026-01-02), `weekly`
/// run `w1` (no logical date), each with its task instances:
///
/// | run | task    | state   | start            | duration | pool / queue          |
/// |-----|---------|---------|------------------|----------|-----------------------|
/// | r1  | extract | success | 2026-01-01 01:00 | 10 s     | default_pool, default |
/// | r1  | load    | failed  | 2026-01-01 01:01 | 60 s     | default_pool, default |
/// | r2  | extract | success | 2026-01-02 01:00 | 5 s      | default_pool, default |
/// | r2  | load    | none    | –                | –        | default_pool, default |
/// | w1  | send    | running | 2026-01-03 00:00 | –        | reports, slow         |
async fn three_runs_in_two_dags() -> TestApi {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    api.add_dag(WEEKLY_DAG).await;
    for (yaml, body) in [
        (ETL_DAG, r#"{"dag_run_id": "r1", "logical_date": "2026-01-01T00:00:00Z"}"#),
        (ETL_DAG, r#"{"dag_run_id": "r2", "logical_date": "2026-01-02T00:00:00Z"}"#),
        (WEEKLY_DAG, r#"{"dag_run_id": "w1"}"#),
    ] {
        api.start_run(yaml, body).await;
    }
    let t = |text: &str| format!("'{text}'::timestamptz");
    let rows = [
        (
            "r1",
            "extract",
            format!(
                "state = 'success', try_number = 1, start_date = {}, end_date = {}",
                t("2026-01-01T01:00:00Z"),
                t("2026-01-01T01:00:10Z")
            ),
        ),
        (
            "r1",
            "load",
            format!(
                "state = 'failed', try_number = 2, start_date = {}, end_date = {}",
                t("2026-01-01T01:01:00Z"),
                t("2026-01-01T01:02:00Z")
            ),
        ),
        (
            "r2",
            "extract",
            format!(
                "state = 'success', try_number = 1, start_date = {}, end_date = {}",
                t("2026-01-02T01:00:00Z"),
                t("2026-01-02T01:00:05Z")
            ),
        ),
        ("r2", "load", "state = 'none'".to_string()),
        (
            "w1",
            "send",
            format!(
                "state = 'running', try_number = 1, pool = 'reports', queue = 'slow', start_date = {}",
                t("2026-01-03T00:00:00Z")
            ),
        ),
    ];
    let client = api.pool.get().await.unwrap();
    for (run_id, task_id, set) in rows {
        let sql = format!("UPDATE task_instances SET {set} WHERE run_id = $1 AND task_id = $2");
        assert_eq!(client.execute(&sql, &[&run_id, &task_id]).await.unwrap(), 1, "{run_id} {task_id}");
    }
    api
}

async fn ok_json(api: &TestApi, path: &str) -> Value {
    let reply = api.get(path).await;
    assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text());
    reply.json()
}

/// `run_id.task_id` of every listed task instance, in order, and `total_entries`.
async fn listed(api: &TestApi, path: &str) -> (Vec<String>, i64) {
    let body = ok_json(api, path).await;
    let names = body["task_instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ti| format!("{}.{}", ti["dag_run_id"].as_str().unwrap(), ti["task_id"].as_str().unwrap()))
        .collect();
    (names, body["total_entries"].as_i64().unwrap())
}

/// The listed names as a set, for filters whose order does not matter.
async fn listed_set(api: &TestApi, path: &str) -> BTreeSet<String> {
    let (names, total) = listed(api, path).await;
    assert_eq!(usize::try_from(total).unwrap(), names.len(), "{path}: one page holds everything");
    names.into_iter().collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

const ALL_OF_ETL: &str = "/api/v2/dags/etl/dagRuns/~/taskInstances";
const EVERYTHING: &str = "/api/v2/dags/~/dagRuns/~/taskInstances";

#[tokio::test]
async fn a_tilde_run_lists_the_task_instances_of_every_run_of_the_dag_with_each_runs_dates() {
    let api = three_runs_in_two_dags().await;
    let body = ok_json(&api, ALL_OF_ETL).await;
    assert_eq!(body["total_entries"], 4);
    for ti in body["task_instances"].as_array().unwrap() {
        assert_eq!(ti["dag_id"], "etl", "{ti}");
        let expected_day = if ti["dag_run_id"] == "r1" { "2026-01-01" } else { "2026-01-02" };
        assert!(ti["logical_date"].as_str().unwrap().starts_with(expected_day), "{ti}");
        assert!(ti["run_after"].is_string(), "{ti}");
    }
    assert_eq!(listed_set(&api, ALL_OF_ETL).await, set(&["r1.extract", "r1.load", "r2.extract", "r2.load"]));
}

#[tokio::test]
async fn tildes_for_dag_and_run_list_every_dags_task_instances() {
    let api = three_runs_in_two_dags().await;
    assert_eq!(listed_set(&api, EVERYTHING).await, set(&["r1.extract", "r1.load", "r2.extract", "r2.load", "w1.send"]));
    let body = ok_json(&api, EVERYTHING).await;
    let send = body["task_instances"].as_array().unwrap().iter().find(|ti| ti["task_id"] == "send").unwrap();
    assert_eq!((send["dag_id"].as_str(), send["state"].as_str()), (Some("weekly"), Some("running")));
    assert!(send["logical_date"].is_null() && send["duration"].is_null(), "{send}");
}

#[tokio::test]
async fn a_run_named_under_a_tilde_dag_is_looked_up_in_every_dag() {
    let api = three_runs_in_two_dags().await;
    assert_eq!(listed_set(&api, "/api/v2/dags/~/dagRuns/r1/taskInstances").await, set(&["r1.extract", "r1.load"]));
}

#[tokio::test]
async fn an_unknown_dag_or_run_named_explicitly_is_a_404() {
    let api = three_runs_in_two_dags().await;
    for (path, named) in [
        ("/api/v2/dags/ghost/dagRuns/~/taskInstances", "ghost"),
        ("/api/v2/dags/ghost/dagRuns/r1/taskInstances", "ghost"),
        ("/api/v2/dags/etl/dagRuns/nope/taskInstances", "nope"),
        ("/api/v2/dags/~/dagRuns/nope/taskInstances", "nope"),
    ] {
        let detail = api.get(path).await.assert_error(StatusCode::NOT_FOUND);
        assert!(detail.contains(named), "{path}: {detail}");
    }
}

#[tokio::test]
async fn the_single_run_listing_is_unchanged_and_takes_the_same_filters() {
    let api = three_runs_in_two_dags().await;
    let (names, total) = listed(&api, "/api/v2/dags/etl/dagRuns/r2/taskInstances").await;
    assert_eq!(
        (names, total),
        (vec!["r2.extract".to_string(), "r2.load".to_string()], 2),
        "started first, then by task"
    );
    let failed = listed_set(&api, "/api/v2/dags/etl/dagRuns/r1/taskInstances?state=failed").await;
    assert_eq!(failed, set(&["r1.load"]));
}

#[tokio::test]
async fn state_pool_queue_task_and_number_filters_take_repeated_keys() {
    let api = three_runs_in_two_dags().await;
    let cases: [(&str, &[&str]); 9] = [
        ("state=success&state=running", &["r1.extract", "r2.extract", "w1.send"]),
        ("state=none", &["r2.load"]),
        ("state=no_status", &["r2.load"]),
        ("state=deferred", &[]),
        ("pool=reports", &["w1.send"]),
        ("queue=slow&queue=nowhere", &["w1.send"]),
        ("task_id=extract", &["r1.extract", "r2.extract"]),
        ("try_number=2", &["r1.load"]),
        ("map_index=-1&operator=noop", &["r1.load", "r2.load", "w1.send"]),
    ];
    for (query, expected) in cases {
        assert_eq!(listed_set(&api, &format!("{EVERYTHING}?{query}")).await, set(expected), "{query}");
    }
}

#[tokio::test]
async fn date_and_duration_ranges_filter_and_total_entries_counts_the_whole_filtered_set() {
    let api = three_runs_in_two_dags().await;
    let cases: [(&str, &[&str]); 6] = [
        ("start_date_gte=2026-01-02", &["r2.extract", "w1.send"]),
        ("logical_date_lte=2026-01-01T00:00:00Z", &["r1.extract", "r1.load"]),
        ("logical_date_gt=2026-01-01T00%3A00%3A00%2B00%3A00", &["r2.extract", "r2.load"]),
        ("end_date_lt=2026-01-01T01:01:00Z", &["r1.extract"]),
        ("duration_gte=10", &["r1.extract", "r1.load"]),
        ("duration_gt=5&duration_lte=10", &["r1.extract"]),
    ];
    for (query, expected) in cases {
        assert_eq!(listed_set(&api, &format!("{EVERYTHING}?{query}")).await, set(expected), "{query}");
    }
    let (page, total) = listed(&api, &format!("{EVERYTHING}?start_date_gte=2026-01-01&limit=1")).await;
    assert_eq!((page.len(), total), (1, 4));
}

#[tokio::test]
async fn pattern_filters_match_literal_text_case_insensitively_or_as_a_prefix() {
    let api = three_runs_in_two_dags().await;
    let cases: [(&str, &[&str]); 4] = [
        ("dag_id_pattern=ET", &["r1.extract", "r1.load", "r2.extract", "r2.load"]),
        ("task_display_name_prefix_pattern=ex", &["r1.extract", "r2.extract"]),
        ("run_id_pattern=r1%7Cw1", &["r1.extract", "r1.load", "w1.send"]),
        ("task_display_name_pattern=%25", &[]),
    ];
    for (query, expected) in cases {
        assert_eq!(listed_set(&api, &format!("{EVERYTHING}?{query}")).await, set(expected), "{query}");
    }
}

#[tokio::test]
async fn order_by_takes_airflows_fields_with_a_minus_for_descending() {
    let api = three_runs_in_two_dags().await;
    let (names, _) = listed(&api, &format!("{EVERYTHING}?state=success&state=failed&order_by=-duration")).await;
    assert_eq!(names, ["r1.load", "r1.extract", "r2.extract"]);
    let (names, _) = listed(&api, &format!("{ALL_OF_ETL}?order_by=-logical_date&order_by=task_id")).await;
    assert_eq!(names, ["r2.extract", "r2.load", "r1.extract", "r1.load"]);
    let (names, _) = listed(&api, &format!("{EVERYTHING}?order_by=dag_id,-start_date")).await;
    assert_eq!(
        names,
        ["r2.load", "r2.extract", "r1.load", "r1.extract", "w1.send"],
        "nulls come first when descending"
    );
}

#[tokio::test]
async fn pages_of_a_cross_run_listing_cover_every_task_instance_once() {
    let api = three_runs_in_two_dags().await;
    let mut seen = Vec::new();
    for offset in [0, 2, 4] {
        let (page, total) = listed(&api, &format!("{EVERYTHING}?order_by=map_index&limit=2&offset={offset}")).await;
        assert_eq!(total, 5);
        seen.extend(page);
    }
    assert_eq!(seen.len(), 5);
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>().len(), 5, "no task instance on two pages");
}

#[tokio::test]
async fn an_unknown_state_a_bad_date_or_number_or_order_field_is_a_client_error_naming_the_parameter() {
    let api = three_runs_in_two_dags().await;
    // Values of the wrong type, and filters gust cannot apply, are FastAPI's 422s.
    for (query, named, status) in [
        ("state=finished", "`state`", StatusCode::UNPROCESSABLE_ENTITY),
        ("start_date_gte=yesterday", "`start_date_gte`", StatusCode::UNPROCESSABLE_ENTITY),
        ("duration_lt=long", "`duration_lt`", StatusCode::UNPROCESSABLE_ENTITY),
        ("map_index=first", "`map_index`", StatusCode::UNPROCESSABLE_ENTITY),
        ("order_by=colour", "colour", StatusCode::BAD_REQUEST),
        ("executor=celery", "`executor`", StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let detail = api.get(&format!("{EVERYTHING}?{query}")).await.assert_error(status);
        assert!(detail.contains(named), "{query}: {detail}");
    }
}
