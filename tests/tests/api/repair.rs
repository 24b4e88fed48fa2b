//! Repairing runs through the API: clearing task instances, marking their
//! state, reading every try, and listing dead letters. Runs against the real
//! PostgreSQL on 127.0.0.1:5432; rows are arranged with plain SQL.

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use gust_shared::db;
use gust_tests::api::TestApi;
use serde_json::{json, Value};

/// `extract → transform → load`, and `report` on its own; two retries each.
const CHAIN_DAG: &str = r#"
dag_id: chain
start_date: 2026-01-01
default_args: {retries: 2}
tasks:
  - id: extract
    operator: bash
    command: echo extract
  - id: transform
    operator: noop
    depends_on: [extract]
  - id: load
    operator: noop
    depends_on: [transform]
  - id: report
    operator: noop
"#;

const TIS: &str = "/api/v2/dags/chain/dagRuns/r1/taskInstances";

async fn ok_json(reply: gust_tests::api::Reply) -> Value {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()
}

/// Stores `chain`, triggers run `r1` and creates its task instances (all "no status").
async fn start_run(api: &TestApi) {
    api.add_dag(CHAIN_DAG).await;
    api.start_run(CHAIN_DAG, r#"{"dag_run_id": "r1"}"#).await;
}

/// Runs `UPDATE task_instances SET {set}` on task `task_id` of run `r1`.
async fn set_ti(api: &TestApi, task_id: &str, set: &str) {
    let client = api.pool.get().await.unwrap();
    let sql = format!("UPDATE task_instances SET {set} WHERE run_id = 'r1' AND task_id = $1");
    assert_eq!(client.execute(&sql, &[&task_id]).await.unwrap(), 1, "{task_id}: {set}");
}

/// Sets run `r1`'s state (and an end date when it is finished).
async fn set_run_state(api: &TestApi, state: &str) {
    let client = api.pool.get().await.unwrap();
    client
        .execute(
            "UPDATE dag_runs SET state = $1, start_date = now(), \
             end_date = CASE WHEN $1 IN ('success', 'failed') THEN now() END WHERE run_id = 'r1'",
            &[&state],
        )
        .await
        .unwrap();
}

/// `extract` failed its only try so far; its downstream tasks are upstream_failed;
/// `report` succeeded; the run failed.
async fn failed_run(api: &TestApi) {
    start_run(api).await;
    let failed_try = "try_number = 1, hostname = 'worker-1', exit_code = 1, failure_reason = 'exit code 1', \
                      queued_at = now(), start_date = now(), end_date = now()";
    set_ti(api, "extract", &format!("state = 'failed', {failed_try}")).await;
    set_ti(api, "transform", "state = 'upstream_failed', end_date = now()").await;
    set_ti(api, "load", "state = 'upstream_failed', end_date = now()").await;
    set_ti(api, "report", "state = 'success', try_number = 1, start_date = now(), end_date = now()").await;
    set_run_state(api, "failed").await;
}

/// Each task id's state, as the API shows it now.
async fn states(api: &TestApi) -> BTreeMap<String, Value> {
    api.task_states(TIS).await
}

/// The `(task_id, state)` pairs of a collection response, sorted by task id.
fn ti_states(collection: &Value) -> Vec<(String, Value)> {
    let mut pairs: Vec<(String, Value)> = collection["task_instances"]
        .as_array()
        .unwrap_or_else(|| panic!("no task_instances in {collection}"))
        .iter()
        .map(|ti| (ti["task_id"].as_str().unwrap().to_string(), ti["state"].clone()))
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(collection["total_entries"], pairs.len(), "{collection}");
    pairs
}

fn pairs(expected: &[(&str, Value)]) -> Vec<(String, Value)> {
    expected.iter().map(|(task, state)| (task.to_string(), state.clone())).collect()
}

async fn run_state(api: &TestApi) -> Value {
    ok_json(api.get("/api/v2/dags/chain/dagRuns/r1").await).await["state"].clone()
}

#[tokio::test]
async fn clearing_a_failed_task_with_include_downstream_resets_it_and_its_downstream_and_requeues_the_run() {
    let api = TestApi::start().await;
    failed_run(&api).await;
    let body = r#"{"dry_run": false, "dag_run_id": "r1", "task_ids": ["extract"], "include_downstream": true}"#;
    let cleared = ok_json(api.send_json(Method::POST, "/api/v2/dags/chain/clearTaskInstances", body).await).await;
    assert_eq!(
        ti_states(&cleared),
        pairs(&[("extract", json!(null)), ("load", json!(null)), ("transform", json!(null))])
    );

    let extract = ok_json(api.get(&format!("{TIS}/extract")).await).await;
    assert!(extract["state"].is_null(), "{extract}");
    assert_eq!(extract["max_tries"], 3, "the try it had plus its two retries: {extract}");
    assert!(extract["exit_code"].is_null() && extract["end_date"].is_null() && extract["hostname"].is_null());
    let now = states(&api).await;
    assert_eq!(now["report"], "success", "report is not downstream of extract");
    assert!(now["transform"].is_null() && now["load"].is_null(), "{now:?}");

    let run = ok_json(api.get("/api/v2/dags/chain/dagRuns/r1").await).await;
    assert_eq!(run["state"], "queued", "the run goes back to the scheduler: {run}");
    assert!(run["end_date"].is_null(), "{run}");
}

#[tokio::test]
async fn a_clear_is_a_dry_run_unless_told_otherwise_and_a_dry_run_changes_nothing() {
    let api = TestApi::start().await;
    failed_run(&api).await;
    let before = states(&api).await;
    let body = r#"{"dag_run_id": "r1", "task_ids": ["extract"], "include_downstream": true}"#;
    let would = ok_json(api.send_json(Method::POST, "/api/v2/dags/chain/clearTaskInstances", body).await).await;
    assert_eq!(
        ti_states(&would),
        pairs(&[
            ("extract", json!("failed")),
            ("load", json!("upstream_failed")),
            ("transform", json!("upstream_failed"))
        ])
    );
    assert_eq!(states(&api).await, before);
    assert_eq!(run_state(&api).await, "failed");
}

#[tokio::test]
async fn clearing_every_task_of_a_run_takes_only_the_failed_ones_by_default_and_never_running_ones() {
    let api = TestApi::start().await;
    failed_run(&api).await;
    set_ti(&api, "transform", "state = 'running', try_number = 1, start_date = now(), end_date = NULL").await;
    let body = r#"{"dry_run": false, "dag_run_id": "r1", "reset_dag_runs": false}"#;
    let cleared = ok_json(api.send_json(Method::POST, "/api/v2/dags/chain/clearTaskInstances", body).await).await;
    assert_eq!(ti_states(&cleared), pairs(&[("extract", json!(null)), ("load", json!(null))]));
    let now = states(&api).await;
    assert_eq!((&now["transform"], &now["report"]), (&json!("running"), &json!("success")));
    assert_eq!(run_state(&api).await, "failed", "reset_dag_runs: false leaves the run as it is");

    let all = r#"{"dry_run": true, "dag_run_id": "r1", "only_failed": false}"#;
    let would = ok_json(api.send_json(Method::POST, "/api/v2/dags/chain/clearTaskInstances", all).await).await;
    assert_eq!(ti_states(&would), pairs(&[("report", json!("success"))]), "no status and running are not clearable");
}

#[tokio::test]
async fn a_clear_without_a_run_with_unknown_tasks_or_only_running_is_a_400_saying_why() {
    let api = TestApi::start().await;
    failed_run(&api).await;
    let clear = |body: &'static str| api.send_json(Method::POST, "/api/v2/dags/chain/clearTaskInstances", body);
    let no_run = clear(r#"{"dry_run": false}"#).await.assert_error(StatusCode::BAD_REQUEST);
    assert_eq!(no_run, "dag_run_id is required (clearing across runs is not supported yet)");
    let unknown = clear(r#"{"dag_run_id": "r1", "task_ids": ["extract", "ghost", "nope"]}"#).await;
    let detail = unknown.assert_error(StatusCode::BAD_REQUEST);
    assert!(detail.contains("`ghost`") && detail.contains("`nope`") && !detail.contains("`extract`"), "{detail}");
    let running = clear(r#"{"dag_run_id": "r1", "only_running": true}"#).await;
    assert!(running.assert_error(StatusCode::BAD_REQUEST).contains("only_running"));
    let missing = clear(r#"{"dag_run_id": "r9"}"#).await.assert_error(StatusCode::NOT_FOUND);
    assert!(missing.contains("`r9`"), "{missing}");
    assert_eq!(run_state(&api).await, "failed");
}

#[tokio::test]
async fn marking_a_failed_task_instance_success_sets_it_and_leaves_the_finished_run_alone() {
    let api = TestApi::start().await;
    failed_run(&api).await;
    let marked =
        ok_json(api.send_json(Method::PATCH, &format!("{TIS}/extract"), r#"{"new_state": "success"}"#).await).await;
    assert_eq!(ti_states(&marked), pairs(&[("extract", json!("success"))]));
    for field in ["id", "dag_run_id", "try_number", "max_tries", "pool", "executor_config", "run_after"] {
        assert!(!marked["task_instances"][0][field].is_null(), "missing {field} in {marked}");
    }
    let extract = ok_json(api.get(&format!("{TIS}/extract")).await).await;
    assert_eq!(extract["state"], "success");
    assert_eq!(states(&api).await["transform"], "upstream_failed", "only the chosen task moves");
    assert_eq!(run_state(&api).await, "failed", "marking does not change a finished run's state");
}

#[tokio::test]
async fn marking_with_include_downstream_moves_the_downstream_tasks_that_may_move() {
    let api = TestApi::start().await;
    start_run(&api).await;
    set_run_state(&api, "running").await;
    set_ti(&api, "load", "state = 'running', try_number = 1, start_date = now()").await;
    let body = r#"{"new_state": "skipped", "include_downstream": true}"#;
    let marked = ok_json(api.send_json(Method::PATCH, &format!("{TIS}/extract"), body).await).await;
    assert_eq!(ti_states(&marked), pairs(&[("extract", json!("skipped")), ("transform", json!("skipped"))]));
    let now = states(&api).await;
    assert_eq!(now["load"], "running", "running cannot become skipped, so it is left out");
    assert_eq!(now["report"], "scheduled", "report is not downstream of extract, so it keeps its state: {now:?}");
}

#[tokio::test]
async fn a_forbidden_transition_is_a_409_saying_where_the_task_instance_is() {
    let api = TestApi::start().await;
    start_run(&api).await;
    set_ti(&api, "extract", "state = 'running', try_number = 1, start_date = now()").await;
    set_ti(&api, "report", "state = 'success', try_number = 1").await;
    let skip = api.send_json(Method::PATCH, &format!("{TIS}/extract"), r#"{"new_state": "skipped"}"#).await;
    let detail = skip.assert_error(StatusCode::CONFLICT);
    assert!(detail.starts_with("task instance `extract` is `running`; it cannot become `skipped`"), "{detail}");
    let again = api.send_json(Method::PATCH, &format!("{TIS}/report"), r#"{"new_state": "success"}"#).await;
    let detail = again.assert_error(StatusCode::CONFLICT);
    assert!(detail.starts_with("task instance `report` is `success`; it cannot become `success`"), "{detail}");
    let dry = api.send_json(Method::PATCH, &format!("{TIS}/extract/dry_run"), r#"{"new_state": "skipped"}"#).await;
    dry.assert_error(StatusCode::CONFLICT);
    assert_eq!(states(&api).await["extract"], "running");
}

#[tokio::test]
async fn only_success_failed_and_skipped_may_be_set_and_a_400_names_them() {
    let api = TestApi::start().await;
    start_run(&api).await;
    for body in [r#"{"new_state": "running"}"#, r#"{"new_state": "up_for_retry"}"#, "{}"] {
        let reply = api.send_json(Method::PATCH, &format!("{TIS}/extract"), body).await;
        let detail = reply.assert_error(StatusCode::BAD_REQUEST);
        assert!(detail.contains("`success`, `failed` or `skipped`"), "{body}: {detail}");
    }
    let ghost = api.send_json(Method::PATCH, &format!("{TIS}/ghost"), r#"{"new_state": "success"}"#).await;
    assert!(ghost.assert_error(StatusCode::NOT_FOUND).contains("`ghost`"));
    assert_eq!(states(&api).await["extract"], "scheduled", "a refused mark changes nothing");
}

#[tokio::test]
async fn a_mark_dry_run_lists_what_would_change_and_changes_nothing() {
    let api = TestApi::start().await;
    failed_run(&api).await;
    let body = r#"{"new_state": "success", "include_downstream": true}"#;
    let would = ok_json(api.send_json(Method::PATCH, &format!("{TIS}/extract/dry_run"), body).await).await;
    assert_eq!(
        ti_states(&would),
        pairs(&[
            ("extract", json!("failed")),
            ("load", json!("upstream_failed")),
            ("transform", json!("upstream_failed"))
        ])
    );
    assert_eq!(states(&api).await["extract"], "failed");
}

#[tokio::test]
async fn tries_list_the_finished_tries_oldest_first_then_the_current_one() {
    let api = TestApi::start().await;
    start_run(&api).await;
    let client = api.pool.get().await.unwrap();
    let extract = db::task_instances::listing::get(&client, "chain", "r1", "extract", -1).await.unwrap().unwrap();
    client
        .execute(
            "INSERT INTO task_instance_tries (ti_id, try_number, state, hostname, exit_code, failure_reason, \
             queued_at, start_date, end_date) VALUES \
             ($1, 1, 'up_for_retry', 'worker-1', 1, 'exit code 1', now() - interval '3 s', \
              now() - interval '2 s', now() - interval '1 s')",
            &[&extract.id],
        )
        .await
        .unwrap();
    set_ti(
        &api,
        "extract",
        "state = 'running', try_number = 2, hostname = 'worker-2', queued_at = now(), start_date = now()",
    )
    .await;

    let tries = ok_json(api.get(&format!("{TIS}/extract/tries")).await).await;
    assert_eq!(tries["total_entries"], 2, "{tries}");
    let list = tries["task_instances"].as_array().unwrap();
    let summary: Vec<(Value, Value, Value)> =
        list.iter().map(|t| (t["try_number"].clone(), t["state"].clone(), t["hostname"].clone())).collect();
    assert_eq!(
        summary,
        [(json!(1), json!("up_for_retry"), json!("worker-1")), (json!(2), json!("running"), json!("worker-2"))]
    );
    let first = &list[0];
    assert_eq!((first["exit_code"].clone(), first["failure_reason"].clone()), (json!(1), json!("exit code 1")));
    let duration = first["duration"].as_f64().expect("a finished try has a duration");
    assert!((duration - 1.0).abs() < 0.01, "{duration}");
    assert_eq!((first["pool"].clone(), first["pool_slots"].clone()), (json!("default_pool"), json!(1)));
    assert_eq!((first["executor"].clone(), first["executor_config"].clone()), (json!("gust"), json!("{}")));
    assert_eq!((first["dag_id"].clone(), first["dag_run_id"].clone()), (json!("chain"), json!("r1")));
    assert_eq!((first["operator"].clone(), first["queue"].clone()), (json!("bash"), json!("default")));
    assert!(first["unixname"].is_null() && first["dag_version"].is_null() && first["scheduled_when"].is_null());
    assert!(list[1]["duration"].is_null() && list[1]["end_date"].is_null(), "the running try has not ended");

    let one = ok_json(api.get(&format!("{TIS}/extract/tries/1")).await).await;
    assert_eq!((one["try_number"].clone(), one["state"].clone()), (json!(1), json!("up_for_retry")));
    let current = ok_json(api.get(&format!("{TIS}/extract/tries/2")).await).await;
    assert_eq!(current["state"], "running");
    let missing = api.get(&format!("{TIS}/extract/tries/3")).await.assert_error(StatusCode::NOT_FOUND);
    assert!(missing.contains("no try 3") && missing.contains("1, 2"), "{missing}");

    let never = ok_json(api.get(&format!("{TIS}/load/tries")).await).await;
    assert_eq!((never["total_entries"].clone(), never["task_instances"].clone()), (json!(0), json!([])));
    api.get(&format!("{TIS}/ghost/tries")).await.assert_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn dead_letters_are_listed_newest_first_with_what_was_wrong() {
    let api = TestApi::start().await;
    let client = api.pool.get().await.unwrap();
    client
        .execute(
            "INSERT INTO dead_letters (queue, routing_key, reason, detail, body) \
             VALUES ('gust.q.default', 'default', 'malformed', 'not JSON: expected value at line 1', 'garbage')",
            &[],
        )
        .await
        .unwrap();
    let ti_id = uuid::Uuid::new_v4();
    client
        .execute(
            "INSERT INTO dead_letters (queue, routing_key, reason, detail, ti_id, dag_id, run_id, task_id, try_number, \
             deliveries, body) VALUES ('gust.q.default', 'default', 'delivery_limit', 'delivered 6 times', $1, 'chain', \
             'r1', 'extract', 2, 6, '{\"v\": 1}')",
            &[&ti_id],
        )
        .await
        .unwrap();

    let list = ok_json(api.get("/api/v2/gust/deadLetters").await).await;
    assert_eq!(list["total_entries"], 2);
    let newest = &list["dead_letters"][0];
    assert_eq!(newest["reason"], "delivery_limit");
    assert_eq!(newest["ti_id"], ti_id.to_string());
    assert_eq!((newest["dag_id"].clone(), newest["dag_run_id"].clone()), (json!("chain"), json!("r1")));
    assert_eq!((newest["task_id"].clone(), newest["try_number"].clone()), (json!("extract"), json!(2)));
    assert_eq!((newest["deliveries"].clone(), newest["body"].clone()), (json!(6), json!("{\"v\": 1}")));
    assert_eq!((newest["queue"].clone(), newest["routing_key"].clone()), (json!("gust.q.default"), json!("default")));
    assert!(newest["id"].is_i64() && newest["received_at"].is_string(), "{newest}");
    let oldest = &list["dead_letters"][1];
    assert_eq!((oldest["reason"].clone(), oldest["body"].clone()), (json!("malformed"), json!("garbage")));
    assert!(oldest["ti_id"].is_null() && oldest["dag_run_id"].is_null(), "{oldest}");

    let page = ok_json(api.get("/api/v2/gust/deadLetters?limit=1&offset=1").await).await;
    assert_eq!((page["dead_letters"].as_array().unwrap().len(), page["total_entries"].clone()), (1, json!(2)));
    assert_eq!(page["dead_letters"][0]["reason"], "malformed");
    api.get("/api/v2/gust/deadLetters?limit=-1").await.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
}
