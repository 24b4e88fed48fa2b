//! DAG runs through the API as Airflow 3's `/api/v2`: listing them across
//! DAGs (`~`) with filters and order, setting a run's state or note, deleting
//! a run and clearing it. Runs against the real PostgreSQL on 127.0.0.1:5432;
//! rows are arranged with plain SQL.

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use gust_tests::api::{TestApi, ETL_DAG};
use gust_webapi::auth::Role;
use serde_json::{json, Value};

/// `extract → load`, two retries each.
const RETRYING_DAG: &str = r#"
dag_id: other
start_date: 2026-01-01
default_args: {retries: 2}
tasks:
  - id: extract
    operator: noop
  - id: load
    operator: noop
    depends_on: [extract]
"#;

const R1: &str = "/api/v2/dags/etl/dagRuns/r1";

async fn ok_json(reply: gust_tests::api::Reply) -> Value {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()
}

/// Triggers run `run_id` of the DAG `yaml` and creates its task instances, as the scheduler would on start.
async fn trigger(api: &TestApi, run_id: &str, yaml: &str) {
    api.start_run(yaml, &json!({"dag_run_id": run_id}).to_string()).await;
}

/// Runs `UPDATE dag_runs SET {set}` on run `run_id` (of any DAG).
async fn set_run(api: &TestApi, run_id: &str, set: &str) {
    let client = api.pool.get().await.unwrap();
    let sql = format!("UPDATE dag_runs SET {set} WHERE run_id = $1");
    assert_eq!(client.execute(&sql, &[&run_id]).await.unwrap(), 1, "{run_id}: {set}");
}

/// Runs `UPDATE task_instances SET {set}` on task `task_id` of run `r1` of `etl`.
async fn set_ti(api: &TestApi, task_id: &str, set: &str) {
    let client = api.pool.get().await.unwrap();
    let sql = format!("UPDATE task_instances SET {set} WHERE dag_id = 'etl' AND run_id = 'r1' AND task_id = $1");
    assert_eq!(client.execute(&sql, &[&task_id]).await.unwrap(), 1, "{task_id}: {set}");
}

/// Run `r1` of `etl`: running, `extract` running its first try, `load` not started.
async fn running_run(api: &TestApi) {
    api.add_dag(ETL_DAG).await;
    trigger(api, "r1", ETL_DAG).await;
    set_run(api, "r1", "state = 'running', start_date = now()").await;
    set_ti(api, "extract", "state = 'running', try_number = 1, hostname = 'w1', start_date = now()").await;
}

/// Run `r1` of `etl`: failed, `extract` failed its try, `load` upstream_failed.
async fn failed_run(api: &TestApi) {
    running_run(api).await;
    set_ti(api, "extract", "state = 'failed', end_date = now(), exit_code = 1").await;
    set_ti(api, "load", "state = 'upstream_failed', end_date = now()").await;
    set_run(api, "r1", "state = 'failed', end_date = now()").await;
}

/// Each task id of run `r1` of `etl` with its state as the API shows it.
async fn ti_states(api: &TestApi) -> BTreeMap<String, Value> {
    api.task_states(&format!("{R1}/taskInstances")).await
}

fn states(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs.iter().map(|(task, state)| (task.to_string(), state.clone())).collect()
}

/// `(dag_id, dag_run_id)` of a run listing, in its order, and its `total_entries`.
async fn listed(api: &TestApi, query: &str) -> (Vec<(String, String)>, i64) {
    let body = ok_json(api.get(&format!("/api/v2/dags/~/dagRuns?{query}")).await).await;
    let runs = body["dag_runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["dag_id"].as_str().unwrap().to_string(), r["dag_run_id"].as_str().unwrap().to_string()))
        .collect();
    (runs, body["total_entries"].as_i64().unwrap())
}

fn runs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected.iter().map(|(d, r)| (d.to_string(), r.to_string())).collect()
}

/// Runs `a` (etl, success, manual), `b` (etl, failed, scheduled, logical date
/// 2026-01-02) and `c` (other, running, backfill, logical date 2026-01-03),
/// created in that order; each started on its logical day (or 2026-01-01).
async fn three_runs(api: &TestApi) {
    api.add_dag(ETL_DAG).await;
    api.add_dag(RETRYING_DAG).await;
    trigger(api, "a", ETL_DAG).await;
    trigger(api, "b", ETL_DAG).await;
    trigger(api, "c", RETRYING_DAG).await;
    set_run(api, "a", "state = 'success', start_date = '2026-01-01T00:00:00Z', end_date = '2026-01-01T01:00:00Z'")
        .await;
    set_run(
        api,
        "b",
        "state = 'failed', run_type = 'scheduled', logical_date = '2026-01-02T00:00:00Z', \
         start_date = '2026-01-02T00:00:00Z', end_date = '2026-01-02T03:00:00Z'",
    )
    .await;
    set_run(
        api,
        "c",
        "state = 'running', run_type = 'backfill', logical_date = '2026-01-03T00:00:00Z', \
         start_date = '2026-01-03T00:00:00Z'",
    )
    .await;
}

#[tokio::test]
async fn the_tilde_lists_the_runs_of_every_dag_newest_first() {
    let api = TestApi::start().await;
    three_runs(&api).await;
    assert_eq!(listed(&api, "").await, (runs(&[("other", "c"), ("etl", "b"), ("etl", "a")]), 3));
    assert_eq!(listed(&api, "limit=1&offset=1").await, (runs(&[("etl", "b")]), 3));
    let etl = ok_json(api.get("/api/v2/dags/etl/dagRuns").await).await;
    assert_eq!(etl["total_entries"], 2, "a named DAG lists only its own runs");
    assert_eq!(listed(&api, "dag_id_pattern=OTH").await, (runs(&[("other", "c")]), 1));
    assert_eq!(listed(&api, "run_id_pattern=a|c").await.1, 2);
    let run = &ok_json(api.get("/api/v2/dags/~/dagRuns").await).await["dag_runs"][0];
    for field in ["dag_run_id", "dag_id", "dag_display_name", "run_after", "run_type", "state", "dag_versions"] {
        assert!(!run[field].is_null(), "missing {field} in {run}");
    }
}

#[tokio::test]
async fn runs_are_filtered_by_state_run_type_and_dates_and_total_entries_counts_the_filtered_set() {
    let api = TestApi::start().await;
    three_runs(&api).await;
    assert_eq!(listed(&api, "state=failed&state=running").await, (runs(&[("other", "c"), ("etl", "b")]), 2));
    assert_eq!(listed(&api, "state=failed&limit=0").await, (runs(&[]), 1));
    assert_eq!(listed(&api, "run_type=manual").await, (runs(&[("etl", "a")]), 1));
    assert_eq!(listed(&api, "run_type=scheduled&run_type=backfill").await.1, 2);
    assert_eq!(listed(&api, "run_type=asset_triggered").await.1, 0, "an Airflow run type gust never creates");
    assert_eq!(listed(&api, "logical_date_gte=2026-01-02T00:00:00Z").await.1, 2);
    assert_eq!(listed(&api, "logical_date_gt=2026-01-02T00:00:00%2B00:00").await, (runs(&[("other", "c")]), 1));
    assert_eq!(listed(&api, "start_date_lt=2026-01-02").await, (runs(&[("etl", "a")]), 1));
    assert_eq!(listed(&api, "start_date_gte=2026-01-02&start_date_lte=2026-01-02T12:00:00").await.1, 1);
    assert_eq!(listed(&api, "end_date_lte=2026-01-01T23:59:59Z").await, (runs(&[("etl", "a")]), 1));
    assert_eq!(listed(&api, "run_after_gte=2020-01-01&state=success").await.1, 1);
    let dated = "/api/v2/dags/etl/dagRuns?state=failed&logical_date_lte=2026-01-02T00:00:00Z";
    assert_eq!(ok_json(api.get(dated).await).await["dag_runs"][0]["dag_run_id"], "b");
}

#[tokio::test]
async fn runs_are_ordered_by_an_allowed_field_either_way() {
    let api = TestApi::start().await;
    three_runs(&api).await;
    let oldest_first = runs(&[("etl", "a"), ("etl", "b"), ("other", "c")]);
    assert_eq!(listed(&api, "order_by=id").await.0, oldest_first);
    assert_eq!(listed(&api, "order_by=dag_run_id").await.0, oldest_first);
    assert_eq!(listed(&api, "order_by=start_date").await.0, oldest_first);
    assert_eq!(listed(&api, "order_by=-end_date").await.0[0], ("other".to_string(), "c".to_string()), "NULLs first");
    assert_eq!(
        listed(&api, "order_by=-duration&state=success&state=failed").await.0,
        runs(&[("etl", "b"), ("etl", "a")])
    );
    assert_eq!(listed(&api, "order_by=state").await.0, runs(&[("etl", "b"), ("other", "c"), ("etl", "a")]));
    assert_eq!(
        listed(&api, "order_by=dag_id&order_by=-run_id").await.0,
        runs(&[("etl", "b"), ("etl", "a"), ("other", "c")])
    );
}

#[tokio::test]
async fn bad_run_filters_are_client_errors_naming_the_parameter() {
    let api = TestApi::start().await;
    three_runs(&api).await;
    // Values of the wrong type or range, and filters gust cannot apply, are FastAPI's 422s.
    for (query, named, status) in [
        ("state=finished", "`state`", StatusCode::UNPROCESSABLE_ENTITY),
        ("run_type=cron", "`run_type`", StatusCode::UNPROCESSABLE_ENTITY),
        ("logical_date_gte=yesterday", "`logical_date_gte`", StatusCode::UNPROCESSABLE_ENTITY),
        ("end_date_lt=2026-13-01", "`end_date_lt`", StatusCode::UNPROCESSABLE_ENTITY),
        ("order_by=-note", "`note`", StatusCode::BAD_REQUEST),
        ("dag_version=1", "`dag_version`", StatusCode::UNPROCESSABLE_ENTITY),
        ("offset=-2", "`offset`", StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let detail = api.get(&format!("/api/v2/dags/~/dagRuns?{query}")).await.assert_error(status);
        assert!(detail.contains(named), "{query}: {detail}");
    }
    let unknown = api.get("/api/v2/dags/nope/dagRuns?state=queued").await.assert_error(StatusCode::NOT_FOUND);
    assert!(unknown.contains("`nope`"), "{unknown}");
}

#[tokio::test]
async fn marking_a_running_run_failed_fails_its_running_tasks_and_skips_the_unstarted_ones() {
    let api = TestApi::start().await;
    running_run(&api).await;
    let run = ok_json(api.send_json(Method::PATCH, R1, r#"{"state": "failed"}"#).await).await;
    assert_eq!(run["state"], "failed");
    assert!(run["end_date"].is_string() && run["duration"].is_number(), "{run}");
    assert_eq!(ti_states(&api).await, states(&[("extract", json!("failed")), ("load", json!("skipped"))]));
    let again = ok_json(api.get(R1).await).await;
    assert_eq!(again["state"], "failed");
}

#[tokio::test]
async fn marking_a_failed_run_success_marks_its_failed_task_instances_success() {
    let api = TestApi::start().await;
    failed_run(&api).await;
    let run = ok_json(api.send_json(Method::PATCH, R1, r#"{"state": "success", "note": "fixed by hand"}"#).await).await;
    assert_eq!((&run["state"], &run["note"]), (&json!("success"), &json!("fixed by hand")));
    assert_eq!(ti_states(&api).await, states(&[("extract", json!("success")), ("load", json!("success"))]));
}

#[tokio::test]
async fn queuing_a_finished_run_starts_it_over_and_keeps_its_task_instances() {
    let api = TestApi::start().await;
    failed_run(&api).await;
    let before = ti_states(&api).await;
    let run = ok_json(api.send_json(Method::PATCH, R1, r#"{"state": "queued"}"#).await).await;
    assert_eq!(run["state"], "queued");
    assert!(run["start_date"].is_null() && run["end_date"].is_null(), "{run}");
    assert_eq!(ti_states(&api).await, before, "clear the run to run its task instances again");
}

#[tokio::test]
async fn a_note_alone_can_be_set_and_removed() {
    let api = TestApi::start().await;
    failed_run(&api).await;
    let run = ok_json(api.send_json(Method::PATCH, R1, r#"{"note": "looking into it"}"#).await).await;
    assert_eq!((&run["note"], &run["state"]), (&json!("looking into it"), &json!("failed")));
    let cleared = ok_json(api.send_json(Method::PATCH, R1, r#"{"note": null}"#).await).await;
    assert!(cleared["note"].is_null(), "{cleared}");
}

#[tokio::test]
async fn the_update_mask_limits_what_a_patch_changes() {
    let api = TestApi::start().await;
    failed_run(&api).await;
    let body = r#"{"state": "success", "note": "only the note"}"#;
    let run = ok_json(api.send_json(Method::PATCH, &format!("{R1}?update_mask=note"), body).await).await;
    assert_eq!((&run["state"], &run["note"]), (&json!("failed"), &json!("only the note")));
    let both = format!("{R1}?update_mask=state&update_mask=note");
    let run = ok_json(api.send_json(Method::PATCH, &both, r#"{"state": "success", "note": null}"#).await).await;
    assert_eq!((&run["state"], &run["note"]), (&json!("success"), &json!(null)));
    let detail = api
        .send_json(Method::PATCH, &format!("{R1}?update_mask=conf"), r#"{"state": "failed"}"#)
        .await
        .assert_error(StatusCode::BAD_REQUEST);
    assert!(detail.contains("`conf`"), "{detail}");
}

#[tokio::test]
async fn a_patch_with_an_unknown_state_or_field_is_a_422_and_one_without_changes_a_400() {
    let api = TestApi::start().await;
    failed_run(&api).await;
    for body in [r#"{"state": "running"}"#, r#"{"stat": "failed"}"#, r#"{"state": 1}"#] {
        let detail = api.send_json(Method::PATCH, R1, body).await.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
        assert!(detail.contains("stat"), "{body}: {detail}");
    }
    let empty = api.send_json(Method::PATCH, R1, "{}").await.assert_error(StatusCode::BAD_REQUEST);
    assert!(empty.contains("nothing to change"), "{empty}");
    let long = json!({"note": "x".repeat(1001)}).to_string();
    let too_long = api.send_json(Method::PATCH, R1, &long).await.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(too_long.contains("`note`"), "{too_long}");
    let malformed = api.send_json(Method::PATCH, R1, r#"{"state": "succ"#).await;
    assert!(malformed.assert_error(StatusCode::UNPROCESSABLE_ENTITY).contains("json_invalid"), "as FastAPI answers");
    assert_eq!(ok_json(api.get(R1).await).await["state"], "failed", "nothing changed");
}

#[tokio::test]
async fn patching_an_unknown_run_or_dag_is_a_404() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    let run = api.send_json(Method::PATCH, R1, r#"{"state": "failed"}"#).await.assert_error(StatusCode::NOT_FOUND);
    assert_eq!(run, "DAG run `r1` of DAG `etl` not found");
    let dag = api.send_json(Method::PATCH, "/api/v2/dags/nope/dagRuns/r1", r#"{"note": "x"}"#).await;
    assert_eq!(dag.assert_error(StatusCode::NOT_FOUND), "DAG `nope` not found");
}

#[tokio::test]
async fn a_viewer_cannot_patch_or_clear_a_run_but_an_operator_can() {
    let api = TestApi::start().await;
    failed_run(&api).await;
    let viewer = api.token_for(Role::Viewer).await;
    let patch = api.send_as(Some(&viewer), Method::PATCH, R1, Some(r#"{"state": "success"}"#)).await;
    assert!(patch.assert_error(StatusCode::FORBIDDEN).contains("operator"));
    let clear = api.send_as(Some(&viewer), Method::POST, &format!("{R1}/clear"), Some("{}")).await;
    clear.assert_error(StatusCode::FORBIDDEN);
    assert_eq!(api.send_as(Some(&viewer), Method::GET, R1, None).await.status, StatusCode::OK);

    let operator = api.token_for(Role::Operator).await;
    let patched = api.send_as(Some(&operator), Method::PATCH, R1, Some(r#"{"note": "mine"}"#)).await;
    assert_eq!(ok_json(patched).await["note"], "mine");
    let cleared = api.send_as(Some(&operator), Method::POST, &format!("{R1}/clear"), Some("{}")).await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.text());
    let deleted = api.send_as(Some(&operator), Method::DELETE, R1, None).await;
    assert!(deleted.assert_error(StatusCode::FORBIDDEN).contains("admin"), "deleting a run is for admins");
}

#[tokio::test]
async fn deleting_a_run_removes_it_with_its_task_instances_and_leaves_other_runs() {
    let api = TestApi::start().await;
    failed_run(&api).await;
    trigger(&api, "r2", ETL_DAG).await;
    let reply = api.send_json(Method::DELETE, R1, "").await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text());
    assert!(reply.body.is_empty());
    api.get(R1).await.assert_error(StatusCode::NOT_FOUND);
    let client = api.pool.get().await.unwrap();
    let left: i64 =
        client.query_one("SELECT count(*) FROM task_instances WHERE run_id = 'r1'", &[]).await.unwrap().get(0);
    assert_eq!(left, 0);
    let list = ok_json(api.get("/api/v2/dags/etl/dagRuns").await).await;
    assert_eq!((list["total_entries"].as_i64(), &list["dag_runs"][0]["dag_run_id"]), (Some(1), &json!("r2")));
}

#[tokio::test]
async fn a_run_with_running_tasks_cannot_be_deleted() {
    let api = TestApi::start().await;
    running_run(&api).await;
    let detail = api.send_json(Method::DELETE, R1, "").await.assert_error(StatusCode::CONFLICT);
    assert!(detail.contains("`extract` of run `r1` is running"), "{detail}");
    assert_eq!(ok_json(api.get(R1).await).await["state"], "running", "nothing was deleted");
    assert_eq!(ok_json(api.send_json(Method::PATCH, R1, r#"{"state": "failed"}"#).await).await["state"], "failed");
    let reply = api.send_json(Method::DELETE, R1, "").await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "once marked failed it can go: {}", reply.text());
}

#[tokio::test]
async fn deleting_an_unknown_run_is_a_404() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    let detail = api.send_json(Method::DELETE, R1, "").await.assert_error(StatusCode::NOT_FOUND);
    assert_eq!(detail, "DAG run `r1` of DAG `etl` not found");
    api.send_json(Method::DELETE, "/api/v2/dags/nope/dagRuns/r1", "").await.assert_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_run_clear_is_a_dry_run_by_default_listing_every_finished_task_instance() {
    let api = TestApi::start().await;
    failed_run(&api).await;
    let before = ti_states(&api).await;
    let would = ok_json(api.send_json(Method::POST, &format!("{R1}/clear"), "{}").await).await;
    assert_eq!(would["total_entries"], 2, "{would}");
    let task_ids: Vec<&str> =
        would["task_instances"].as_array().unwrap().iter().map(|t| t["task_id"].as_str().unwrap()).collect();
    assert_eq!(task_ids.len(), 2);
    assert!(task_ids.contains(&"extract") && task_ids.contains(&"load"), "{would}");
    assert_eq!(ti_states(&api).await, before);
    assert_eq!(ok_json(api.get(R1).await).await["state"], "failed");
}

#[tokio::test]
async fn clearing_a_run_resets_its_finished_task_instances_and_queues_it_again() {
    let api = TestApi::start().await;
    failed_run(&api).await;
    let body = r#"{"dry_run": false, "note": "rerun after the fix"}"#;
    let run = ok_json(api.send_json(Method::POST, &format!("{R1}/clear"), body).await).await;
    assert_eq!((&run["dag_run_id"], &run["state"]), (&json!("r1"), &json!("queued")), "a DAGRunResponse: {run}");
    assert_eq!(run["note"], "rerun after the fix");
    assert!(run["end_date"].is_null(), "{run}");
    assert_eq!(ti_states(&api).await, states(&[("extract", json!(null)), ("load", json!(null))]));
    let extract = ok_json(api.get(&format!("{R1}/taskInstances/extract")).await).await;
    assert!(extract["exit_code"].is_null() && extract["end_date"].is_null(), "{extract}");
}

#[tokio::test]
async fn only_failed_clears_failed_task_instances_and_never_running_ones() {
    let api = TestApi::start().await;
    failed_run(&api).await;
    set_ti(&api, "extract", "state = 'success'").await;
    set_ti(&api, "load", "state = 'failed'").await;
    let path = format!("{R1}/clear");
    let would = ok_json(api.send_json(Method::POST, &path, r#"{"only_failed": true}"#).await).await;
    assert_eq!(would["task_instances"].as_array().unwrap().len(), 1);
    assert_eq!(would["task_instances"][0]["task_id"], "load");
    let run = ok_json(api.send_json(Method::POST, &path, r#"{"only_failed": true, "dry_run": false}"#).await).await;
    assert_eq!(run["state"], "queued");
    assert_eq!(ti_states(&api).await, states(&[("extract", json!("success")), ("load", json!(null))]));

    set_ti(&api, "load", "state = 'running'").await;
    let nothing = ok_json(api.send_json(Method::POST, &path, r#"{"only_failed": true}"#).await).await;
    assert_eq!(nothing["total_entries"], 0, "a running task instance is never cleared");
}

#[tokio::test]
async fn a_clear_with_a_wrong_body_or_for_an_unknown_run_is_refused() {
    let api = TestApi::start().await;
    failed_run(&api).await;
    let path = format!("{R1}/clear");
    for body in [r#"{"dry_run": "yes"}"#, r#"{"only_faild": true}"#] {
        api.send_json(Method::POST, &path, body).await.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    }
    let new = api.send_json(Method::POST, &path, r#"{"only_new": true}"#).await;
    assert!(new.assert_error(StatusCode::UNPROCESSABLE_ENTITY).contains("only_new"));
    let latest = api.send_json(Method::POST, &path, r#"{"run_on_latest_version": true}"#).await;
    assert_eq!(latest.status, StatusCode::OK, "the run is on the latest version: {}", latest.text());
    let missing = api.send_json(Method::POST, "/api/v2/dags/etl/dagRuns/r9/clear", "{}").await;
    assert_eq!(missing.assert_error(StatusCode::NOT_FOUND), "DAG run `r9` of DAG `etl` not found");
    assert_eq!(ok_json(api.get(R1).await).await["state"], "failed");
}
