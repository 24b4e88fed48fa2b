//! Airflow 3.3's operations on one task instance beyond reading it: by map
//! index, `listMapped`, `dependencies`, delete, bulk update and delete, the
//! batch listing, task groups, extra links and external log URLs. Runs
//! against the real PostgreSQL on 127.0.0.1:5432; rows are arranged with the
//! scheduler's own statements or plain SQL.

use axum::http::{Method, StatusCode};
use gust_shared::db;
use gust_tests::api::TestApi;
use gust_webapi::auth::Role;
use serde_json::{json, Value};

/// A DAG with a mapped task over three elements and a "task group" of two
/// tasks (Airflow's ids `group.first`, `group.second`).
const FAN_DAG: &str = r#"
dag_id: fan
start_date: 2026-01-01
tasks:
  - id: source
    operator: noop
  - id: each
    operator: noop
    depends_on: [source]
    expand: [a, b, c]
  - id: group.first
    operator: noop
  - id: group.second
    operator: noop
    depends_on: [group.first]
"#;

const RUN: &str = "/api/v2/dags/fan/dagRuns/r1";
const TIS: &str = "/api/v2/dags/fan/dagRuns/r1/taskInstances";

/// Run `r1` of `fan`, with `each` expanded into map indexes 0, 1 and 2.
async fn fan_run() -> TestApi {
    let api = TestApi::start().await;
    api.add_dag(FAN_DAG).await;
    api.start_run(FAN_DAG, r#"{"dag_run_id": "r1"}"#).await;
    let client = api.pool.get().await.unwrap();
    let placeholder: uuid::Uuid = client
        .query_one("SELECT id FROM task_instances WHERE run_id = 'r1' AND task_id = 'each'", &[])
        .await
        .unwrap()
        .get(0);
    let items = [json!("a"), json!("b"), json!("c")];
    assert!(db::task_instances::run_progress::expand_mapped(&client, placeholder, &items).await.unwrap());
    api
}

async fn sql(api: &TestApi, statement: &str) {
    api.pool.get().await.unwrap().execute(statement, &[]).await.unwrap();
}

async fn ok(reply: gust_tests::api::Reply) -> Value {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()
}

/// `task_id[map_index]=state` of each task instance of a collection.
fn summary(collection: &Value) -> Vec<String> {
    collection["task_instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ti| format!("{}[{}]={}", ti["task_id"].as_str().unwrap(), ti["map_index"], ti["state"]))
        .collect()
}

#[tokio::test]
async fn one_instance_of_a_mapped_task_is_read_by_its_map_index() {
    let api = fan_run().await;
    let ti = ok(api.get(&format!("{TIS}/each/1")).await).await;
    assert_eq!((ti["task_id"].as_str(), ti["map_index"].as_i64()), (Some("each"), Some(1)));
    assert_eq!(ti["rendered_map_index"], "1");
    let unmapped = ok(api.get(&format!("{TIS}/source/-1")).await).await;
    assert!(unmapped["rendered_map_index"].is_null());
    let error = api.get(&format!("{TIS}/each")).await.assert_error(StatusCode::NOT_FOUND);
    assert!(error.contains("mapped") && error.contains("listMapped"), "{error}");
    let error = api.get(&format!("{TIS}/each/7")).await.assert_error(StatusCode::NOT_FOUND);
    assert!(error.contains("map_index 7"), "{error}");
    api.get(&format!("{TIS}/each/first")).await.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn list_mapped_pages_filters_and_orders_the_instances_of_a_mapped_task() {
    let api = fan_run().await;
    sql(&api, "UPDATE task_instances SET state = 'success' WHERE task_id = 'each' AND map_index = 1").await;
    let all = ok(api.get(&format!("{TIS}/each/listMapped")).await).await;
    assert_eq!(summary(&all), ["each[0]=\"scheduled\"", "each[1]=\"success\"", "each[2]=\"scheduled\""]);
    assert_eq!(all["total_entries"], 3);
    let page = ok(api.get(&format!("{TIS}/each/listMapped?order_by=-map_index&limit=1")).await).await;
    assert_eq!((summary(&page), page["total_entries"].as_i64()), (vec!["each[2]=\"scheduled\"".to_string()], Some(3)));
    let done = ok(api.get(&format!("{TIS}/each/listMapped?state=success")).await).await;
    assert_eq!(summary(&done), ["each[1]=\"success\""]);
    let error = api.get(&format!("{TIS}/source/listMapped")).await.assert_error(StatusCode::NOT_FOUND);
    assert!(error.contains("not mapped"), "{error}");
    let error = api.get(&format!("{TIS}/ghost/listMapped")).await.assert_error(StatusCode::NOT_FOUND);
    assert!(error.contains("`ghost`"), "{error}");
}

#[tokio::test]
async fn a_mapped_instance_is_marked_by_map_index_and_without_one_every_instance_is() {
    let api = fan_run().await;
    let body = r#"{"new_state": "failed"}"#;
    let dry = ok(api.send_json(Method::PATCH, &format!("{TIS}/each/0/dry_run"), body).await).await;
    assert_eq!(summary(&dry), ["each[0]=\"scheduled\""]);
    let marked = ok(api.send_json(Method::PATCH, &format!("{TIS}/each/0"), body).await).await;
    assert_eq!(summary(&marked), ["each[0]=\"failed\""]);
    let again = api.send_json(Method::PATCH, &format!("{TIS}/each/0"), body).await;
    let error = again.assert_error(StatusCode::CONFLICT);
    assert!(error.contains("(map_index 0)") && error.contains("already"), "{error}");
    let rest = ok(api.send_json(Method::PATCH, &format!("{TIS}/each"), r#"{"new_state": "failed"}"#).await).await;
    assert_eq!(summary(&rest), ["each[1]=\"failed\"", "each[2]=\"failed\""], "index 0 already failed");
    let one =
        ok(api.send_json(Method::PATCH, &format!("{TIS}/each?map_index=1"), r#"{"new_state": "success"}"#).await).await;
    assert_eq!(summary(&one), ["each[1]=\"success\""]);
}

#[tokio::test]
async fn tries_of_a_mapped_instance_are_read_by_map_index() {
    let api = fan_run().await;
    sql(&api, "UPDATE task_instances SET state = 'running', try_number = 1, start_date = now() WHERE task_id = 'each' AND map_index = 2").await;
    let tries = ok(api.get(&format!("{TIS}/each/2/tries")).await).await;
    assert_eq!((tries["total_entries"].as_i64(), tries["task_instances"][0]["map_index"].as_i64()), (Some(1), Some(2)));
    let first = ok(api.get(&format!("{TIS}/each/2/tries/1")).await).await;
    assert_eq!(first["state"], "running");
    let error = api.get(&format!("{TIS}/each/2/tries/2")).await.assert_error(StatusCode::NOT_FOUND);
    assert!(error.contains("(map_index 2)") && error.contains("its tries are 1"), "{error}");
    assert_eq!(ok(api.get(&format!("{TIS}/each/tries?map_index=2")).await).await["total_entries"], 1);
}

/// The `dependencies` of the task instance at `path`.
async fn deps(api: &TestApi, path: String) -> Value {
    ok(api.get(&path).await).await["dependencies"].clone()
}

#[tokio::test]
async fn dependencies_say_why_a_task_instance_is_not_running() {
    let api = fan_run().await;
    // The run is still queued (the trigger made it so) and `group.first` has not run.
    let waiting = deps(&api, format!("{TIS}/group.second/dependencies")).await;
    let reason = |name: &str| {
        let found = waiting.as_array().unwrap().iter().find(|d| d["name"] == name);
        found.map(|d| d["reason"].as_str().unwrap().to_string())
    };
    assert!(reason("Dagrun Running").is_some_and(|r| r.contains("`queued`")), "{waiting}");
    assert!(reason("Trigger Rule").is_some_and(|r| r.contains("group.first: scheduled")), "{waiting}");

    sql(&api, "UPDATE dag_runs SET state = 'running' WHERE run_id = 'r1'").await;
    sql(&api, "UPDATE task_instances SET state = 'success' WHERE task_id = 'group.first'").await;
    assert_eq!(deps(&api, format!("{TIS}/group.second/dependencies")).await, json!([]), "nothing holds it back");

    sql(&api, "UPDATE pools SET slots = 0 WHERE name = 'default_pool'").await;
    let full = deps(&api, format!("{TIS}/each/0/dependencies")).await;
    assert_eq!(full[0]["name"], "Pool Slots Available", "{full}");
    assert!(full[0]["reason"].as_str().unwrap().contains("default_pool"), "{full}");

    sql(&api, "UPDATE task_instances SET state = 'running' WHERE task_id = 'source'").await;
    assert_eq!(deps(&api, format!("{TIS}/source/dependencies")).await, json!([]), "a running task waits for nothing");
    api.get(&format!("{TIS}/ghost/dependencies")).await.assert_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_task_instance_of_a_finished_run_is_deleted_by_an_admin_only() {
    let api = fan_run().await;
    let error = api.send_as(None, Method::DELETE, &format!("{TIS}/source"), None).await;
    assert_eq!(error.status, StatusCode::UNAUTHORIZED);
    let operator = api.token_for(Role::Operator).await;
    let refused = api.send_as(Some(&operator), Method::DELETE, &format!("{TIS}/source"), None).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text());
    let live = api.send_as(Some(&api.admin_token), Method::DELETE, &format!("{TIS}/source"), None).await;
    assert!(live.assert_error(StatusCode::CONFLICT).contains("is queued"));

    sql(&api, "UPDATE dag_runs SET state = 'success' WHERE run_id = 'r1'").await;
    assert_eq!(
        api.send_as(Some(&api.admin_token), Method::DELETE, &format!("{TIS}/each?map_index=1"), None).await.status,
        StatusCode::OK
    );
    let left = ok(api.get(&format!("{TIS}/each/listMapped")).await).await;
    assert_eq!(left["total_entries"], 2);
    let gone = api.send_as(Some(&api.admin_token), Method::DELETE, &format!("{TIS}/each?map_index=1"), None).await;
    gone.assert_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bulk_updates_and_deletes_report_each_entity() {
    let api = fan_run().await;
    let body = json!({"actions": [
        {"action": "update", "entities": [
            {"task_id": "each", "map_index": 0, "new_state": "success"},
            {"task_id": "source", "new_state": "skipped"},
            {"task_id": "ghost", "new_state": "success"},
        ]},
        {"action": "update", "action_on_non_existence": "skip", "entities": [{"task_id": "ghost", "new_state": "failed"}]},
        {"action": "create", "entities": [{"task_id": "x"}]},
        {"action": "delete", "entities": ["group.first"]},
    ]});
    let reply = ok(api.send_json(Method::PATCH, TIS, &body.to_string()).await).await;
    assert_eq!(reply["update"]["success"], json!(["fan.r1.each[0]", "fan.r1.source[-1]"]), "{reply}");
    let errors = reply["update"]["errors"].as_array().unwrap();
    assert_eq!((errors.len(), errors[0]["status_code"].as_i64()), (1, Some(404)), "{reply}");
    assert_eq!(reply["create"]["errors"][0]["status_code"], 405);
    assert_eq!(reply["delete"]["errors"][0]["status_code"], 409, "the run is not finished: {reply}");
    let states = api.task_states(&format!("{TIS}?task_id=source")).await;
    assert_eq!(states["source"], "skipped");

    let operator = api.token_for(Role::Operator).await;
    sql(&api, "UPDATE dag_runs SET state = 'failed' WHERE run_id = 'r1'").await;
    let delete = json!({"actions": [{"action": "delete", "entities": ["group.first"]}]}).to_string();
    let as_operator = api.send_as(Some(&operator), Method::PATCH, TIS, Some(&delete)).await;
    assert_eq!(as_operator.status, StatusCode::OK);
    assert_eq!(as_operator.json()["delete"]["errors"][0]["status_code"], 403);
    let as_admin = ok(api.send_json(Method::PATCH, TIS, &delete).await).await;
    assert_eq!(as_admin["delete"]["success"], json!(["fan.r1.group.first[-1]"]));
    let unknown = api.send_json(Method::PATCH, TIS, r#"{"actions": [{"action": "upsert", "entities": []}]}"#).await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", unknown.text());
}

#[tokio::test]
async fn the_batch_listing_takes_the_filters_in_a_body_and_is_a_read() {
    let api = fan_run().await;
    let viewer = api.token_for(Role::Viewer).await;
    let body =
        json!({"dag_ids": ["fan"], "task_ids": ["each", "source"], "state": ["scheduled"], "order_by": "-map_index"});
    let path = "/api/v2/dags/~/dagRuns/~/taskInstances/list";
    let reply = api.send_as(Some(&viewer), Method::POST, path, Some(&body.to_string())).await;
    let listed = ok(reply).await;
    assert_eq!(
        summary(&listed),
        ["each[2]=\"scheduled\"", "each[1]=\"scheduled\"", "each[0]=\"scheduled\"", "source[-1]=\"scheduled\""]
    );
    let none = ok(api.send_json(Method::POST, path, r#"{"state": [null]}"#).await).await;
    assert_eq!(summary(&none), ["group.second[-1]=null"]);
    let paged = ok(api.send_json(Method::POST, path, r#"{"page_limit": 1, "page_offset": 1}"#).await).await;
    assert_eq!((paged["task_instances"].as_array().unwrap().len(), paged["total_entries"].as_i64()), (1, Some(6)));
    let error = api.send_json(Method::POST, path, r#"{"dag_id": "fan"}"#).await;
    assert!(error.assert_error(StatusCode::UNPROCESSABLE_ENTITY).contains("dag_id"));
    api.send_json(Method::POST, path, r#"{"order_by": "pool"}"#).await.assert_error(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_task_group_is_the_tasks_whose_ids_start_with_its_id() {
    let api = fan_run().await;
    let path = format!("{RUN}/taskGroupInstances/group");
    let dry = ok(api.send_json(Method::PATCH, &format!("{path}/dry_run"), r#"{"new_state": "success"}"#).await).await;
    assert_eq!(summary(&dry), ["group.first[-1]=\"scheduled\"", "group.second[-1]=null"]);
    let marked = ok(api.send_json(Method::PATCH, &path, r#"{"new_state": "failed"}"#).await).await;
    assert_eq!(summary(&marked), ["group.first[-1]=\"failed\"", "group.second[-1]=\"failed\""]);
    let again = api.send_json(Method::PATCH, &path, r#"{"new_state": "failed"}"#).await;
    again.assert_error(StatusCode::CONFLICT);
    let missing =
        api.send_json(Method::PATCH, &format!("{RUN}/taskGroupInstances/grp"), r#"{"new_state": "failed"}"#).await;
    assert!(missing.assert_error(StatusCode::NOT_FOUND).contains("`grp.`"));
}

#[tokio::test]
async fn extra_links_are_empty_and_external_log_urls_are_refused_as_without_a_handler() {
    let api = fan_run().await;
    let links = ok(api.get(&format!("{TIS}/source/links")).await).await;
    assert_eq!(links, json!({"extra_links": {}, "total_entries": 0}));
    api.get(&format!("{TIS}/ghost/links")).await.assert_error(StatusCode::NOT_FOUND);
    api.get(&format!("{TIS}/source/links?try_number=3")).await.assert_error(StatusCode::NOT_FOUND);
    let error = api.get(&format!("{TIS}/source/externalLogUrl/1")).await.assert_error(StatusCode::BAD_REQUEST);
    assert!(error.contains("does not support external logs") && error.contains("/logs/1"), "{error}");
}

#[tokio::test]
async fn odd_paths_and_bodies_get_a_4xx_naming_the_problem() {
    let api = fan_run().await;
    for path in [
        format!("{TIS}/each/2147483648"),
        format!("{TIS}/each/2147483648/tries/1"),
        format!("{TIS}/each/-5/dependencies"),
        "/api/v2/dags/~/dagRuns/~/taskInstances/each/dependencies".to_string(),
        format!("{TIS}/source/externalLogUrl/0"),
        format!("{TIS}/source/links?map_index=x"),
        "/api/v2/dags/ghost/dagRuns/r1/taskInstances/each/listMapped".to_string(),
    ] {
        let reply = api.get(&path).await;
        assert!(reply.status.is_client_error(), "{path}: {} {}", reply.status, reply.text());
    }
    let wildcard =
        json!({"actions": [{"action": "update", "entities": [{"task_id": "each", "new_state": "success"}]}]});
    let reply =
        ok(api.send_json(Method::PATCH, "/api/v2/dags/~/dagRuns/~/taskInstances", &wildcard.to_string()).await).await;
    assert_eq!(reply["update"]["errors"][0]["status_code"], 400, "{reply}");
    let note = json!({"actions": [{"action": "update", "entities": [{"task_id": "source", "new_state": "success", "note": "x"}]}]});
    let reply = ok(api.send_json(Method::PATCH, TIS, &note.to_string()).await).await;
    assert!(reply["update"]["errors"][0]["error"].as_str().unwrap().contains("note"), "{reply}");
    let group =
        api.send_json(Method::PATCH, &format!("{RUN}/taskGroupInstances/group"), r#"{"new_state": "running"}"#).await;
    assert!(group.assert_error(StatusCode::BAD_REQUEST).contains("`new_state`"));
}
