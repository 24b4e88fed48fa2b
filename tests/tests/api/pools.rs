//! `/api/v2/pools` against the real PostgreSQL on 127.0.0.1:5432: Airflow's
//! shapes, the slot counts, and a 4xx JSON error for every client mistake.

use axum::http::{Method, StatusCode};
use gust_tests::api::TestApi;
use serde_json::{json, Value};

async fn ok_json(reply: gust_tests::api::Reply, status: StatusCode) -> Value {
    assert_eq!(reply.status, status, "{}", reply.text());
    reply.json()
}

async fn create_pool(api: &TestApi, body: Value) -> gust_tests::api::Reply {
    api.send_json(Method::POST, "/api/v2/pools", &body.to_string()).await
}

/// Tasks in pool `etl`: `big` needs 2 slots and weighs 10; `a`, `b` and `c` need one each.
const POOLED_DAG: &str = r#"
dag_id: pooled
start_date: 2026-01-01
max_active_tasks: 5
default_args: {pool: etl}
tasks:
  - {id: big, operator: noop, pool_slots: 2, priority_weight: 10}
  - {id: a, operator: noop}
  - {id: b, operator: noop}
  - {id: c, operator: noop}
  - {id: elsewhere, operator: noop, pool: default_pool}
"#;

#[tokio::test]
async fn the_default_pool_exists_with_airflows_128_slots() {
    let api = TestApi::start().await;
    let list = ok_json(api.get("/api/v2/pools").await, StatusCode::OK).await;
    assert_eq!(list["total_entries"], 1, "{list}");
    let pool = &list["pools"][0];
    assert_eq!(pool["name"], "default_pool");
    assert_eq!(pool["slots"], 128);
    assert_eq!(pool["include_deferred"], false);
    for field in ["occupied_slots", "running_slots", "queued_slots", "scheduled_slots", "deferred_slots"] {
        assert_eq!(pool[field], 0, "{field} in {pool}");
    }
    assert_eq!(pool["open_slots"], 128);
}

#[tokio::test]
async fn a_pool_is_created_read_listed_changed_and_deleted() {
    let api = TestApi::start().await;
    let created = create_pool(&api, json!({"name": "etl", "slots": 3, "description": "warehouse loads"})).await;
    let created = ok_json(created, StatusCode::CREATED).await;
    assert_eq!(created["name"], "etl");
    assert_eq!(created["slots"], 3);
    assert_eq!(created["description"], "warehouse loads");
    assert_eq!(created["open_slots"], 3);
    ok_json(create_pool(&api, json!({"name": "gpu", "slots": 1, "include_deferred": true})).await, StatusCode::CREATED)
        .await;

    let one = ok_json(api.get("/api/v2/pools/etl").await, StatusCode::OK).await;
    assert_eq!(one, created);
    let page = ok_json(api.get("/api/v2/pools?limit=2&offset=1").await, StatusCode::OK).await;
    assert_eq!(page["total_entries"], 3, "{page}");
    let names: Vec<&str> = page["pools"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["etl", "gpu"], "pools are listed by name");

    let patched = api.send_json(Method::PATCH, "/api/v2/pools/etl", r#"{"slots": 5, "description": null}"#).await;
    let patched = ok_json(patched, StatusCode::OK).await;
    assert_eq!((patched["slots"].clone(), patched["description"].clone()), (json!(5), Value::Null));
    let masked = api
        .send_json(Method::PATCH, "/api/v2/pools/etl?update_mask=description", r#"{"slots": 9, "description": "d"}"#)
        .await;
    let masked = ok_json(masked, StatusCode::OK).await;
    assert_eq!((masked["slots"].clone(), masked["description"].clone()), (json!(5), json!("d")));

    let deleted = api.send(axum::http::Request::delete("/api/v2/pools/etl").body(Default::default()).unwrap()).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text());
    api.get("/api/v2/pools/etl").await.assert_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_default_pool_can_be_resized_but_not_deleted() {
    let api = TestApi::start().await;
    let resized = api.send_json(Method::PATCH, "/api/v2/pools/default_pool", r#"{"slots": 1000}"#).await;
    assert_eq!(ok_json(resized, StatusCode::OK).await["slots"], 1000);
    let request = axum::http::Request::delete("/api/v2/pools/default_pool").body(Default::default()).unwrap();
    let detail = api.send(request).await.assert_error(StatusCode::BAD_REQUEST);
    assert!(detail.contains("`default_pool` cannot be deleted"), "{detail}");
    let detail = api
        .send_json(Method::PATCH, "/api/v2/pools/default_pool", r#"{"description": "mine"}"#)
        .await
        .assert_error(StatusCode::BAD_REQUEST);
    assert!(detail.contains("only `slots` and `include_deferred`"), "{detail}");
}

#[tokio::test]
async fn a_duplicate_pool_is_a_conflict() {
    let api = TestApi::start().await;
    ok_json(create_pool(&api, json!({"name": "etl", "slots": 1})).await, StatusCode::CREATED).await;
    let detail = create_pool(&api, json!({"name": "etl", "slots": 2})).await.assert_error(StatusCode::CONFLICT);
    assert!(detail.contains("pool `etl` already exists"), "{detail}");
    let detail =
        create_pool(&api, json!({"name": "default_pool", "slots": 2})).await.assert_error(StatusCode::CONFLICT);
    assert!(detail.contains("default_pool"), "{detail}");
}

#[tokio::test]
async fn unknown_pools_are_not_found() {
    let api = TestApi::start().await;
    let detail = api.get("/api/v2/pools/nope").await.assert_error(StatusCode::NOT_FOUND);
    assert_eq!(detail, "pool `nope` not found");
    api.send_json(Method::PATCH, "/api/v2/pools/nope", r#"{"slots": 1}"#).await.assert_error(StatusCode::NOT_FOUND);
    let request = axum::http::Request::delete("/api/v2/pools/nope").body(Default::default()).unwrap();
    api.send(request).await.assert_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_pool_bodies_are_client_errors_naming_the_problem() {
    let api = TestApi::start().await;
    let detail =
        create_pool(&api, json!({"name": "etl", "slots": -1})).await.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(detail.contains("`slots` must be a whole number from 0"), "{detail}");
    let detail =
        create_pool(&api, json!({"name": "bad name", "slots": 1})).await.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(detail.contains("pool name `bad name`"), "{detail}");
    let detail = create_pool(&api, json!({"name": "etl"})).await.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(detail.contains("slots"), "{detail}");
    let detail = create_pool(&api, json!({"name": "etl", "slots": 1, "colour": "red"}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(detail.contains("colour"), "{detail}");
    create_pool(&api, json!({"name": "etl", "slots": "many"})).await.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    let not_json = api.send_json(Method::POST, "/api/v2/pools", "{not json").await;
    assert_eq!(
        not_json.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "Airflow answers malformed JSON with 422: {}",
        not_json.text()
    );
    api.get("/api/v2/pools?limit=-1").await.assert_error(StatusCode::UNPROCESSABLE_ENTITY);

    ok_json(create_pool(&api, json!({"name": "etl", "slots": 1})).await, StatusCode::CREATED).await;
    let rename = api.send_json(Method::PATCH, "/api/v2/pools/etl", r#"{"name": "etl2"}"#).await;
    assert!(rename.assert_error(StatusCode::BAD_REQUEST).contains("cannot be renamed"));
    let mask = api.send_json(Method::PATCH, "/api/v2/pools/etl?update_mask=colour", r#"{"slots": 2}"#).await;
    assert!(mask.assert_error(StatusCode::BAD_REQUEST).contains("`colour`"));
    let negative = api.send_json(Method::PATCH, "/api/v2/pools/etl", r#"{"slots": -5}"#).await;
    negative.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn slot_counts_and_task_instances_show_pool_pool_slots_and_priority_weight() {
    let api = TestApi::start().await;
    ok_json(create_pool(&api, json!({"name": "etl", "slots": 6})).await, StatusCode::CREATED).await;
    api.add_dag(POOLED_DAG).await;
    api.start_run(POOLED_DAG, r#"{"dag_run_id": "r1"}"#).await;
    let client = api.pool.get().await.unwrap();
    for (task, state) in [("big", "running"), ("a", "queued"), ("b", "scheduled"), ("c", "success")] {
        client
            .execute("UPDATE task_instances SET state = $1 WHERE run_id = 'r1' AND task_id = $2", &[&state, &task])
            .await
            .unwrap();
    }

    let pool = ok_json(api.get("/api/v2/pools/etl").await, StatusCode::OK).await;
    let counts: Vec<i64> = ["running_slots", "queued_slots", "scheduled_slots", "occupied_slots", "open_slots"]
        .iter()
        .map(|field| pool[field].as_i64().unwrap())
        .collect();
    assert_eq!(counts, [2, 1, 1, 3, 3], "{pool}");

    let big = ok_json(api.get("/api/v2/dags/pooled/dagRuns/r1/taskInstances/big").await, StatusCode::OK).await;
    assert_eq!(
        (big["pool"].clone(), big["pool_slots"].clone(), big["priority_weight"].clone()),
        (json!("etl"), json!(2), json!(10))
    );
    let other = ok_json(api.get("/api/v2/dags/pooled/dagRuns/r1/taskInstances/elsewhere").await, StatusCode::OK).await;
    assert_eq!(
        (other["pool"].clone(), other["pool_slots"].clone(), other["priority_weight"].clone()),
        (json!("default_pool"), json!(1), json!(1))
    );
    let dag = ok_json(api.get("/api/v2/dags/pooled").await, StatusCode::OK).await;
    assert_eq!(dag["max_active_tasks"], 5);
}

#[tokio::test]
async fn pools_are_listed_in_the_order_asked_and_an_unknown_order_field_is_a_400() {
    let api = TestApi::start().await;
    for (name, slots) in [("b_pool", 5), ("a_pool", 9)] {
        create_pool(&api, json!({"name": name, "slots": slots})).await;
    }
    let names = |body: Value| -> Vec<String> {
        body["pools"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect()
    };
    let by_name = ok_json(api.get("/api/v2/pools").await, StatusCode::OK).await;
    assert_eq!(names(by_name), ["a_pool", "b_pool", "default_pool"]);
    let by_slots = ok_json(api.get("/api/v2/pools?order_by=-slots&limit=2").await, StatusCode::OK).await;
    assert_eq!(by_slots["total_entries"], 3);
    assert_eq!(names(by_slots), ["default_pool", "a_pool"]);
    let detail = api.get("/api/v2/pools?order_by=colour").await.assert_error(StatusCode::BAD_REQUEST);
    assert!(detail.contains("colour") && detail.contains("slots"), "{detail}");
}

#[tokio::test]
async fn pools_are_created_changed_and_deleted_in_bulk_with_one_outcome_per_action() {
    let api = TestApi::start().await;
    ok_json(create_pool(&api, json!({"name": "old", "slots": 1})).await, StatusCode::CREATED).await;
    let body = json!({"actions": [
        {"action": "create", "entities": [{"name": "etl", "slots": 4}, {"name": "gpu", "slots": 2, "description": "cards"}]},
        {"action": "update", "entities": [{"name": "etl", "slots": 8, "description": "ignored"}], "update_mask": ["slots"]},
        {"action": "delete", "entities": ["old"]},
    ]});
    let outcome = ok_json(api.send_json(Method::PATCH, "/api/v2/pools", &body.to_string()).await, StatusCode::OK).await;
    assert_eq!(
        outcome,
        json!({
            "create": {"success": ["etl", "gpu"], "errors": []},
            "update": {"success": ["etl"], "errors": []},
            "delete": {"success": ["old"], "errors": []},
        })
    );
    let etl = ok_json(api.get("/api/v2/pools/etl").await, StatusCode::OK).await;
    assert_eq!(
        (etl["slots"].as_i64(), etl["description"].is_null(), etl["team_name"].is_null()),
        (Some(8), true, true)
    );
    api.get("/api/v2/pools/old").await.assert_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_failing_bulk_action_changes_nothing_and_says_why_while_the_others_apply() {
    let api = TestApi::start().await;
    ok_json(create_pool(&api, json!({"name": "etl", "slots": 1})).await, StatusCode::CREATED).await;
    let body = json!({"actions": [
        {"action": "create", "entities": [{"name": "new", "slots": 1}, {"name": "etl", "slots": 5}]},
        {"action": "delete", "entities": ["default_pool"]},
        {"action": "update", "entities": [{"name": "missing", "slots": 1}, {"name": "etl", "slots": 3}], "action_on_non_existence": "skip"},
    ]});
    let outcome = ok_json(api.send_json(Method::PATCH, "/api/v2/pools", &body.to_string()).await, StatusCode::OK).await;
    assert_eq!(outcome["create"]["success"], json!([]), "{outcome}");
    assert_eq!(outcome["create"]["errors"][0]["status_code"], 409, "{outcome}");
    let conflict = outcome["create"]["errors"][0]["error"].as_str().unwrap();
    assert!(conflict.contains("`etl`") && conflict.contains("overwrite"), "{conflict}");
    assert_eq!(outcome["delete"]["errors"][0]["status_code"], 400, "{outcome}");
    assert_eq!(outcome["update"], json!({"success": ["etl"], "errors": []}));
    api.get("/api/v2/pools/new").await.assert_error(StatusCode::NOT_FOUND);
    assert_eq!(ok_json(api.get("/api/v2/pools/etl").await, StatusCode::OK).await["slots"], 3);

    let overwrite = json!({"actions": [{"action": "create", "action_on_existence": "overwrite",
        "entities": [{"name": "etl", "slots": 7}, {"name": "new", "slots": 1}]}]});
    let outcome =
        ok_json(api.send_json(Method::PATCH, "/api/v2/pools", &overwrite.to_string()).await, StatusCode::OK).await;
    assert_eq!(outcome, json!({"create": {"success": ["etl", "new"], "errors": []}, "update": null, "delete": null}));
    assert_eq!(ok_json(api.get("/api/v2/pools/etl").await, StatusCode::OK).await["slots"], 7);
}

#[tokio::test]
async fn a_malformed_bulk_body_or_a_team_is_refused_and_only_admins_send_bulk_requests() {
    let api = TestApi::start().await;
    let unknown = json!({"actions": [{"action": "upsert", "entities": []}]}).to_string();
    api.send_json(Method::PATCH, "/api/v2/pools", &unknown).await.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    let team = json!({"actions": [{"action": "create", "entities": [{"name": "t", "slots": 1, "team_name": "a"}]}]});
    let error = api
        .send_json(Method::PATCH, "/api/v2/pools", &team.to_string())
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error.contains("`team_name`"), "{error}");
    let single = create_pool(&api, json!({"name": "t", "slots": 1, "team_name": "a"})).await;
    assert!(single.assert_error(StatusCode::UNPROCESSABLE_ENTITY).contains("team"));
    let null_team = create_pool(&api, json!({"name": "t", "slots": 1, "team_name": null})).await;
    ok_json(null_team, StatusCode::CREATED).await;
    let operator = api.token_for(gust_webapi::auth::Role::Operator).await;
    let body = json!({"actions": []}).to_string();
    api.send_as(Some(&operator), Method::PATCH, "/api/v2/pools", Some(&body)).await.assert_error(StatusCode::FORBIDDEN);
}
