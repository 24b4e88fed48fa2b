//! `GET /api/v2/dags` filters and orders as Airflow's `get_dags`, and
//! `DELETE /api/v2/dags/{dag_id}` removes a DAG's metadata. Runs against the
//! real PostgreSQL on 127.0.0.1:5432; rows are arranged with plain SQL.

use axum::http::{Method, StatusCode};
use gust_shared::db;
use gust_tests::api::{TestApi, ETL_DAG};
use gust_webapi::auth::Role;
use serde_json::Value;

/// A DAG file with this id, tags and owner, and one task.
fn dag_yaml(dag_id: &str, tags: &[&str], owner: &str) -> String {
    format!(
        "dag_id: {dag_id}\nstart_date: 2026-01-01\ntags: [{}]\ndefault_args: {{owner: {owner}}}\n\
         tasks:\n  - id: only\n    operator: noop\n",
        tags.join(", ")
    )
}

/// Four DAGs: `etl_daily` (tags a, b; owner ana), `etlxhourly` (a; bo),
/// `report` (b; ana, paused) and `aged_etl` (none; bo, its file gone). Their
/// ids sort the same in the C and in natural-language collations.
async fn four_dags(api: &TestApi) {
    api.add_dag(&dag_yaml("etl_daily", &["a", "b"], "ana")).await;
    api.add_dag(&dag_yaml("etlxhourly", &["a"], "bo")).await;
    api.add_dag(&dag_yaml("report", &["b"], "ana")).await;
    api.add_dag(&dag_yaml("aged_etl", &[], "bo")).await;
    let client = api.pool.get().await.unwrap();
    client.execute("UPDATE dags SET is_paused = true WHERE dag_id = 'report'", &[]).await.unwrap();
    client.execute("UPDATE dags SET is_active = false WHERE dag_id = 'aged_etl'", &[]).await.unwrap();
}

/// The DAG ids of a listing, in its order, and its `total_entries`.
async fn listed(api: &TestApi, query: &str) -> (Vec<String>, i64) {
    let reply = api.get(&format!("/api/v2/dags?{query}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{query}: {}", reply.text());
    let body = reply.json();
    let ids = body["dags"].as_array().unwrap().iter().map(|d| d["dag_id"].as_str().unwrap().to_string()).collect();
    (ids, body["total_entries"].as_i64().unwrap())
}

fn ids(expected: &[&str]) -> Vec<String> {
    expected.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn dag_id_pattern_is_a_case_insensitive_substring_and_total_entries_counts_the_filtered_set() {
    let api = TestApi::start().await;
    four_dags(&api).await;
    assert_eq!(listed(&api, "dag_id_pattern=ETL").await, (ids(&["etl_daily", "etlxhourly"]), 2));
    assert_eq!(listed(&api, "dag_id_pattern=ETL&exclude_stale=false").await.1, 3, "stale DAGs only on request");
    assert_eq!(listed(&api, "dag_id_pattern=etl&limit=1").await, (ids(&["etl_daily"]), 2));
    assert_eq!(listed(&api, "dag_id_pattern=hourly|report").await, (ids(&["etlxhourly", "report"]), 2));
    assert_eq!(listed(&api, "dag_display_name_pattern=DAILY").await, (ids(&["etl_daily"]), 1));
    assert_eq!(listed(&api, "dag_id_prefix_pattern=etl").await.1, 2);
    assert_eq!(listed(&api, "dag_id_prefix_pattern=ETL").await.1, 0, "a prefix is case-sensitive");
    assert_eq!(listed(&api, "dag_id_pattern=~").await.1, 3, "`~` matches everything");
}

#[tokio::test]
async fn percent_and_underscore_in_dag_id_pattern_match_themselves() {
    let api = TestApi::start().await;
    four_dags(&api).await;
    assert_eq!(listed(&api, "dag_id_pattern=etl_").await, (ids(&["etl_daily"]), 1), "`_` is not a wildcard");
    assert_eq!(listed(&api, "dag_id_pattern=%25").await, (ids(&[]), 0), "`%` is not a wildcard");
    assert_eq!(listed(&api, "dag_id_pattern=%27%3B%20drop%20table%20dags%3B--").await.1, 0);
    assert_eq!(listed(&api, "").await.1, 3, "the table is still there");
}

#[tokio::test]
async fn paused_tags_and_owners_filter_dags() {
    let api = TestApi::start().await;
    four_dags(&api).await;
    assert_eq!(listed(&api, "paused=true").await, (ids(&["report"]), 1));
    assert_eq!(listed(&api, "paused=false").await, (ids(&["etl_daily", "etlxhourly"]), 2));
    assert_eq!(listed(&api, "tags=a").await, (ids(&["etl_daily", "etlxhourly"]), 2));
    assert_eq!(listed(&api, "tags=a&tags=b").await, (ids(&["etl_daily", "etlxhourly", "report"]), 3));
    assert_eq!(listed(&api, "tags=a&tags=b&tags_match_mode=all").await, (ids(&["etl_daily"]), 1));
    assert_eq!(listed(&api, "tags=b&paused=false").await, (ids(&["etl_daily"]), 1));
    assert_eq!(listed(&api, "owners=bo").await, (ids(&["etlxhourly"]), 1));
    assert_eq!(listed(&api, "owners=bo&exclude_stale=false").await, (ids(&["aged_etl", "etlxhourly"]), 2));
    let report = &api.get("/api/v2/dags?paused=true").await.json()["dags"][0];
    assert_eq!(report["is_paused"], true);
    assert_eq!(report["owners"], serde_json::json!(["ana"]));
}

#[tokio::test]
async fn dags_are_ordered_by_dag_id_or_display_name_either_way() {
    let api = TestApi::start().await;
    four_dags(&api).await;
    let all = ids(&["aged_etl", "etl_daily", "etlxhourly", "report"]);
    assert_eq!(listed(&api, "exclude_stale=false").await.0, all);
    let mut reversed = all.clone();
    reversed.reverse();
    assert_eq!(listed(&api, "exclude_stale=false&order_by=-dag_id").await.0, reversed);
    assert_eq!(listed(&api, "exclude_stale=false&order_by=-dag_display_name").await.0, reversed);
    assert_eq!(listed(&api, "exclude_stale=false&order_by=last_run_state").await.1, 4);
}

#[tokio::test]
async fn dags_are_ordered_by_the_state_of_their_latest_run() {
    let api = TestApi::start().await;
    four_dags(&api).await;
    for (dag_id, state) in [("etl_daily", "success"), ("report", "failed")] {
        let path = format!("/api/v2/dags/{dag_id}/dagRuns");
        assert_eq!(api.send_json(Method::POST, &path, "{}").await.status, StatusCode::OK);
        let client = api.pool.get().await.unwrap();
        client.execute("UPDATE dag_runs SET state = $1 WHERE dag_id = $2", &[&state, &dag_id]).await.unwrap();
    }
    let (order, _) = listed(&api, "order_by=last_run_state&order_by=dag_id").await;
    assert_eq!(order, ids(&["report", "etl_daily", "etlxhourly"]), "failed < success, DAGs without runs last");
}

#[tokio::test]
async fn bad_dag_filters_are_client_errors_naming_the_parameter() {
    let api = TestApi::start().await;
    four_dags(&api).await;
    // Values of the wrong type or range, and filters gust cannot apply, are FastAPI's 422s.
    for (query, named, status) in [
        ("paused=maybe", "`paused`", StatusCode::UNPROCESSABLE_ENTITY),
        ("exclude_stale=2", "`exclude_stale`", StatusCode::UNPROCESSABLE_ENTITY),
        ("tags=a&tags_match_mode=some", "`tags_match_mode`", StatusCode::UNPROCESSABLE_ENTITY),
        ("order_by=fileloc", "`fileloc`", StatusCode::BAD_REQUEST),
        ("has_import_errors=true", "`has_import_errors`", StatusCode::UNPROCESSABLE_ENTITY),
        ("limit=-1", "`limit`", StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let detail = api.get(&format!("/api/v2/dags?{query}")).await.assert_error(status);
        assert!(detail.contains(named), "{query}: {detail}");
    }
}

/// Triggers run `r1` of `etl`, creates its task instances with `extract` in
/// `extract_state`, and gives `extract` a log line, an XCom and a finished try.
async fn etl_run(api: &TestApi, extract_state: &str) {
    api.add_dag(ETL_DAG).await;
    let (_, run_pk) = api.start_run(ETL_DAG, r#"{"dag_run_id": "r1"}"#).await;
    let client = api.pool.get().await.unwrap();
    client
        .execute("UPDATE dag_runs SET state = 'running', start_date = now() WHERE id = $1", &[&run_pk])
        .await
        .unwrap();
    let extract = db::task_instances::listing::get(&client, "etl", "r1", "extract", -1).await.unwrap().unwrap();
    client
        .execute(
            "UPDATE task_instances SET state = $2, try_number = 1, start_date = now() WHERE id = $1",
            &[&extract.id, &extract_state],
        )
        .await
        .unwrap();
    db::logs::append(&client, extract.id, 1, &[(chrono::Utc::now(), "stdout", "hello")]).await.unwrap();
    client
        .execute("INSERT INTO xcom (ti_id, key, value, try_number) VALUES ($1, 'return_value', '1', 1)", &[&extract.id])
        .await
        .unwrap();
    client
        .execute("INSERT INTO task_instance_tries (ti_id, try_number, state) VALUES ($1, 1, 'failed')", &[&extract.id])
        .await
        .unwrap();
}

/// Rows of `table` that belong to DAG `etl` (by `dag_id`, or through its task instances).
async fn rows_of_etl(api: &TestApi, table: &str) -> i64 {
    let client = api.pool.get().await.unwrap();
    let sql = match table {
        "dags" | "dag_versions" | "dag_runs" | "task_instances" | "backfills" => {
            format!("SELECT count(*) FROM {table} WHERE dag_id = 'etl'")
        }
        _ => format!("SELECT count(*) FROM {table}"),
    };
    client.query_one(&sql, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn deleting_a_dag_removes_its_runs_task_instances_logs_xcoms_and_versions() {
    let api = TestApi::start().await;
    etl_run(&api, "success").await;
    api.add_dag(&dag_yaml("other", &[], "ana")).await;
    let backfill = r#"{"dag_id": "etl", "from_date": "2026-01-01T00:00:00Z", "to_date": "2026-01-02T00:00:00Z"}"#;
    assert_eq!(api.send_json(Method::POST, "/api/v2/backfills", backfill).await.status, StatusCode::OK);
    let tables = ["dags", "dag_versions", "dag_runs", "task_instances", "task_instance_tries", "task_logs", "xcom"];
    for table in tables {
        assert!(rows_of_etl(&api, table).await > 0, "{table} has rows to delete");
    }

    let reply = api.send_json(Method::DELETE, "/api/v2/dags/etl", "").await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text());
    assert!(reply.body.is_empty());
    for table in tables.into_iter().chain(["backfills"]) {
        assert_eq!(rows_of_etl(&api, table).await, 0, "{table} still has rows of etl");
    }
    api.get("/api/v2/dags/etl").await.assert_error(StatusCode::NOT_FOUND);
    api.get("/api/v2/dags/etl/dagRuns").await.assert_error(StatusCode::NOT_FOUND);
    assert_eq!(listed(&api, "").await, (ids(&["other"]), 1), "other DAGs stay");
}

#[tokio::test]
async fn a_deleted_dag_can_be_registered_again_from_its_file() {
    let api = TestApi::start().await;
    etl_run(&api, "success").await;
    assert_eq!(api.send_json(Method::DELETE, "/api/v2/dags/etl", "").await.status, StatusCode::NO_CONTENT);
    api.add_dag(ETL_DAG).await;
    let created = api.send_json(Method::POST, "/api/v2/dags/etl/dagRuns", r#"{"dag_run_id": "r1"}"#).await;
    assert_eq!(created.status, StatusCode::OK, "the old run id is free again: {}", created.text());
    assert_eq!(created.json()["dag_versions"][0]["version_number"], 1, "versions start over");
}

#[tokio::test]
async fn a_dag_with_running_task_instances_cannot_be_deleted() {
    let api = TestApi::start().await;
    etl_run(&api, "running").await;
    let detail = api.send_json(Method::DELETE, "/api/v2/dags/etl", "").await.assert_error(StatusCode::CONFLICT);
    assert!(detail.contains("`extract` of run `r1` is running"), "{detail}");
    assert_eq!(rows_of_etl(&api, "task_instances").await, 2, "nothing was deleted");

    let client = api.pool.get().await.unwrap();
    client.execute("UPDATE task_instances SET state = 'queued' WHERE task_id = 'extract'", &[]).await.unwrap();
    api.send_json(Method::DELETE, "/api/v2/dags/etl", "").await.assert_error(StatusCode::CONFLICT);
    client.execute("UPDATE task_instances SET state = 'up_for_retry' WHERE task_id = 'extract'", &[]).await.unwrap();
    let reply = api.send_json(Method::DELETE, "/api/v2/dags/etl", "").await;
    assert_eq!(
        reply.status,
        StatusCode::NO_CONTENT,
        "a retry waiting in the broker does not hold it: {}",
        reply.text()
    );
}

#[tokio::test]
async fn deleting_an_unknown_dag_is_a_404() {
    let api = TestApi::start().await;
    let detail = api.send_json(Method::DELETE, "/api/v2/dags/nope", "").await.assert_error(StatusCode::NOT_FOUND);
    assert_eq!(detail, "DAG `nope` not found");
}

#[tokio::test]
async fn deleting_a_dag_needs_the_admin_role() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    for role in [Role::Viewer, Role::Operator] {
        let token = api.token_for(role).await;
        let reply = api.send_as(Some(&token), Method::DELETE, "/api/v2/dags/etl", None).await;
        assert!(reply.assert_error(StatusCode::FORBIDDEN).contains("admin"), "{role}");
        let viewer_list = api.send_as(Some(&token), Method::GET, "/api/v2/dags?paused=false", None).await;
        assert_eq!(viewer_list.status, StatusCode::OK);
    }
    assert_eq!(api.get("/api/v2/dags/etl").await.status, StatusCode::OK, "still there");
    let _: Value = api.get("/api/v2/dags").await.json();
}
