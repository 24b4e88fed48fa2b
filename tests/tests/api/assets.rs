//! Assets (`/api/v2/assets…`) against the real PostgreSQL: the assets DAG
//! files name with the DAGs and tasks that reference them, aliases, events
//! posted from outside and their filters, the runs events created, queued
//! events per asset and DAG, materializing an asset, and the 4xx answers.

use axum::http::{Method, StatusCode};
use gust_shared::db::{self, assets::NewAssetEvent};
use gust_tests::api::{Reply, TestApi};
use gust_webapi::auth::Role;
use serde_json::{json, Value};

/// A DAG whose tasks consume `s3://lake/raw` and produce `s3://lake/orders` and `items`.
const PRODUCER: &str = r#"
dag_id: producer
schedule: null
tasks:
  - id: extract
    operator: noop
    inlets: [s3://lake/raw]
  - id: publish
    operator: noop
    depends_on: [extract]
    outlets:
      - s3://lake/orders
      - {uri: s3://lake/items, name: items, group: raw, extra: {owner: data, password: hunter2}}
      - {alias: daily}
"#;

/// A DAG scheduled on `s3://lake/orders`.
const CONSUMER: &str = r#"
dag_id: consumer
schedule: {assets: [s3://lake/orders]}
start_date: 2026-01-01
tasks:
  - id: report
    operator: noop
"#;

fn ok(reply: Reply) -> Value {
    assert!(reply.status.is_success(), "{}: {}", reply.status, reply.text());
    reply.json()
}

/// An API with the producer and consumer DAGs registered; returns it with the asset ids by name.
async fn lake() -> (TestApi, std::collections::BTreeMap<String, i64>) {
    let api = TestApi::start().await;
    api.add_dag(PRODUCER).await;
    api.add_dag(CONSUMER).await;
    let page = ok(api.get("/api/v2/assets?only_active=false").await);
    let ids = page["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap().to_string(), a["id"].as_i64().unwrap()))
        .collect();
    (api, ids)
}

/// The names of the assets a listing answers, in its order.
async fn asset_names(api: &TestApi, query: &str) -> Vec<String> {
    let page = ok(api.get(&format!("/api/v2/assets?{query}")).await);
    page["assets"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap().to_string()).collect()
}

/// Posts an event on `asset_id` as `token`.
async fn post_event(api: &TestApi, token: &str, body: Value) -> Reply {
    api.send_as(Some(token), Method::POST, "/api/v2/assets/events", Some(&body.to_string())).await
}

/// The ids of the events a listing answers, in its order.
async fn event_ids(api: &TestApi, query: &str) -> Vec<i64> {
    let page = ok(api.get(&format!("/api/v2/assets/events?{query}")).await);
    page["asset_events"].as_array().unwrap().iter().map(|e| e["id"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn assets_are_listed_with_the_dags_and_tasks_that_reference_them() {
    let (api, ids) = lake().await;
    let mut by_id: Vec<(i64, String)> = ids.iter().map(|(name, id)| (*id, name.clone())).collect();
    by_id.sort();
    let by_id: Vec<String> = by_id.into_iter().map(|(_, name)| name).collect();
    assert_eq!(asset_names(&api, "").await, by_id);

    let orders = ok(api.get(&format!("/api/v2/assets/{}", ids["s3://lake/orders"])).await);
    assert_eq!(orders["uri"], "s3://lake/orders");
    assert_eq!(orders["group"], "asset");
    assert_eq!(orders["scheduled_dags"].as_array().unwrap().len(), 1);
    assert_eq!(orders["scheduled_dags"][0]["dag_id"], "consumer");
    assert_eq!(orders["producing_tasks"][0]["dag_id"], "producer");
    assert_eq!(orders["producing_tasks"][0]["task_id"], "publish");
    assert_eq!(orders["consuming_tasks"], json!([]));
    assert_eq!(orders["watchers"], json!([]));
    assert_eq!(orders["last_asset_event"], json!({"id": null, "timestamp": null}));
    for field in ["created_at", "updated_at"] {
        assert!(orders[field].is_string(), "{field}: {orders}");
        assert!(orders["scheduled_dags"][0][field].is_string(), "{field}: {orders}");
    }

    let raw = ok(api.get(&format!("/api/v2/assets/{}", ids["s3://lake/raw"])).await);
    assert_eq!(raw["consuming_tasks"][0]["task_id"], "extract");
    assert_eq!(raw["producing_tasks"], json!([]));
    let items = ok(api.get(&format!("/api/v2/assets/{}", ids["items"])).await);
    assert_eq!(items["group"], "raw");
    assert_eq!(items["extra"]["owner"], "data");
    assert_ne!(items["extra"]["password"], "hunter2", "secret-looking extras are masked");

    let page = ok(api.get("/api/v2/assets?limit=1&offset=1").await);
    assert_eq!((page["assets"][0]["name"].clone(), page["total_entries"].clone()), (json!(by_id[1]), json!(3)));
}

#[tokio::test]
async fn assets_are_filtered_by_name_uri_dag_and_activeness_and_ordered() {
    let (api, _) = lake().await;
    assert_eq!(asset_names(&api, "name_pattern=ITEM").await, ["items"]);
    assert_eq!(asset_names(&api, "name_prefix_pattern=s3://lake/o").await, ["s3://lake/orders"]);
    assert_eq!(asset_names(&api, "uri_pattern=RAW|items&order_by=name").await, ["items", "s3://lake/raw"]);
    assert_eq!(asset_names(&api, "uri_prefix_pattern=s3://lake/i").await, ["items"]);
    assert_eq!(asset_names(&api, "dag_ids=consumer").await, ["s3://lake/orders"]);
    assert_eq!(asset_names(&api, "dag_ids=nobody,consumer").await, ["s3://lake/orders"]);
    assert_eq!(asset_names(&api, "dag_ids=producer").await.len(), 3);
    assert_eq!(asset_names(&api, "order_by=-name").await, ["s3://lake/raw", "s3://lake/orders", "items"]);
    assert_eq!(asset_names(&api, "order_by=uri").await, ["items", "s3://lake/orders", "s3://lake/raw"]);

    // The producer's file is gone: only the assets an active DAG names stay active.
    let client = api.pool.get().await.unwrap();
    client.execute("UPDATE dags SET is_active = false WHERE dag_id = 'producer'", &[]).await.unwrap();
    assert_eq!(asset_names(&api, "").await, ["s3://lake/orders"]);
    assert_eq!(asset_names(&api, "only_active=false").await.len(), 3);

    let detail = api.get("/api/v2/assets?order_by=size").await.assert_error(StatusCode::BAD_REQUEST);
    assert!(detail.contains("id, name, uri, created_at, updated_at"), "{detail}");
    let detail = api.get("/api/v2/assets?only_active=maybe").await.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(detail.contains("`only_active`"), "{detail}");
    let detail = api.get("/api/v2/assets/999999").await.assert_error(StatusCode::NOT_FOUND);
    assert!(detail.contains("999999"), "{detail}");
    api.get("/api/v2/assets/orders").await.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn aliases_are_listed_with_the_assets_they_resolved_to() {
    let (api, ids) = lake().await;
    let page = ok(api.get("/api/v2/assets/aliases").await);
    assert_eq!(page["total_entries"], 1);
    let alias = page["asset_aliases"][0].clone();
    assert_eq!((alias["name"].clone(), alias["group"].clone()), (json!("daily"), json!("asset")));
    let alias_id = alias["id"].as_i64().unwrap();
    assert_eq!(ok(api.get(&format!("/api/v2/assets/aliases/{alias_id}")).await), alias);
    assert_eq!(ok(api.get("/api/v2/assets/aliases?name_pattern=week").await)["total_entries"], 0);
    assert_eq!(ok(api.get("/api/v2/assets/aliases?name_prefix_pattern=dai&order_by=-name").await)["total_entries"], 1);

    // An event recorded through the alias resolved it to `items`.
    let client = api.pool.get().await.unwrap();
    client
        .execute("INSERT INTO asset_alias_assets (alias_id, asset_id) VALUES ($1, $2)", &[&alias_id, &ids["items"]])
        .await
        .unwrap();
    let items = ok(api.get(&format!("/api/v2/assets/{}", ids["items"])).await);
    assert_eq!(items["aliases"], json!([alias]));

    api.get("/api/v2/assets/aliases/424242").await.assert_error(StatusCode::NOT_FOUND);
    api.get("/api/v2/assets/aliases?order_by=uri").await.assert_error(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_posted_event_is_recorded_and_queued_for_the_dags_scheduled_on_its_asset() {
    let (api, ids) = lake().await;
    let operator = api.token_for(Role::Operator).await;
    let orders = ids["s3://lake/orders"];
    let event = ok(post_event(&api, &operator, json!({"asset_id": orders, "extra": {"rows": 3}})).await);
    assert_eq!(event["asset_id"], orders);
    assert_eq!((event["uri"].clone(), event["name"].clone()), (json!("s3://lake/orders"), json!("s3://lake/orders")));
    assert_eq!(event["group"], "asset");
    assert_eq!(event["extra"], json!({"rows": 3, "from_rest_api": true}));
    for field in ["source_dag_id", "source_task_id", "source_run_id", "partition_key"] {
        assert!(event[field].is_null(), "{field}: {event}");
    }
    assert_eq!(event["source_map_index"], -1);
    assert_eq!(event["created_dagruns"], json!([]));
    assert!(event["timestamp"].is_string(), "{event}");

    let asset = ok(api.get(&format!("/api/v2/assets/{orders}")).await);
    assert_eq!(asset["last_asset_event"]["id"], event["id"]);
    assert_eq!(asset["last_asset_event"]["timestamp"], event["timestamp"]);

    let queued = ok(api.get("/api/v2/dags/consumer/assets/queuedEvents").await);
    assert_eq!(queued["total_entries"], 1);
    let entry = &queued["queued_events"][0];
    assert_eq!((entry["dag_id"].clone(), entry["asset_id"].clone()), (json!("consumer"), json!(orders)));
    assert_eq!(entry["dag_display_name"], "consumer");
    assert_eq!(ok(api.get(&format!("/api/v2/assets/{orders}/queuedEvents")).await), queued);
    assert_eq!(ok(api.get(&format!("/api/v2/dags/consumer/assets/{orders}/queuedEvents")).await), *entry);

    // No DAG is scheduled on `items`: its event queues nothing.
    ok(post_event(&api, &operator, json!({"asset_id": ids["items"], "partition_key": "2026-01-01"})).await);
    assert_eq!(ok(api.get(&format!("/api/v2/assets/{}/queuedEvents", ids["items"])).await)["total_entries"], 0);
}

#[tokio::test]
async fn posting_an_event_refuses_unknown_assets_bad_bodies_and_viewers() {
    let (api, ids) = lake().await;
    let operator = api.token_for(Role::Operator).await;
    let viewer = api.token_for(Role::Viewer).await;
    let orders = ids["s3://lake/orders"];
    let detail = post_event(&api, &operator, json!({"asset_id": 987654})).await.assert_error(StatusCode::NOT_FOUND);
    assert!(detail.contains("987654"), "{detail}");
    for body in [
        json!({"asset_id": orders, "source_dag_id": "x"}),
        json!({"extra": {}}),
        json!({"asset_id": "orders"}),
        json!({"asset_id": orders, "extra": [1]}),
    ] {
        post_event(&api, &operator, body).await.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    }
    let detail = post_event(&api, &operator, json!({"asset_id": orders, "partition_key": "  "}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(detail.contains("`partition_key`"), "{detail}");
    post_event(&api, &viewer, json!({"asset_id": orders})).await.assert_error(StatusCode::FORBIDDEN);
    assert_eq!(event_ids(&api, "").await, Vec::<i64>::new(), "nothing was recorded");
}

#[tokio::test]
async fn queued_events_are_deleted_per_asset_per_dag_or_both() {
    let (api, ids) = lake().await;
    let orders = ids["s3://lake/orders"];
    let api_ref = &api;
    let post = move || async move { ok(post_event(api_ref, &api_ref.admin_token, json!({"asset_id": orders})).await) };
    let count = move |path: String| async move { ok(api_ref.get(&path).await)["total_entries"].as_i64().unwrap() };
    let one = format!("/api/v2/dags/consumer/assets/{orders}/queuedEvents");
    let of_asset = format!("/api/v2/assets/{orders}/queuedEvents");
    let of_dag = "/api/v2/dags/consumer/assets/queuedEvents".to_string();

    post().await;
    assert_eq!(count(format!("{of_dag}?before=2000-01-01T00:00:00Z")).await, 0, "queued after `before`");
    let detail = api.send_as(Some(&api.admin_token), Method::DELETE, &format!("{one}?before=2000-01-01"), None).await;
    detail.assert_error(StatusCode::NOT_FOUND);
    api.get(&format!("{one}?before=2000-01-01")).await.assert_error(StatusCode::NOT_FOUND);
    let reply = api.send_as(Some(&api.admin_token), Method::DELETE, &one, None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text());
    assert_eq!(count(of_dag.clone()).await, 0);
    api.send_as(Some(&api.admin_token), Method::DELETE, &one, None).await.assert_error(StatusCode::NOT_FOUND);
    api.get(&one).await.assert_error(StatusCode::NOT_FOUND);

    post().await;
    let reply = api.send_as(Some(&api.admin_token), Method::DELETE, &of_asset, None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text());
    assert_eq!(count(of_asset.clone()).await, 0);
    api.send_as(Some(&api.admin_token), Method::DELETE, &of_asset, None).await.assert_error(StatusCode::NOT_FOUND);

    post().await;
    let operator = api.token_for(Role::Operator).await;
    api.send_as(Some(&operator), Method::DELETE, &of_dag, None).await.assert_error(StatusCode::FORBIDDEN);
    let reply = api.send_as(Some(&api.admin_token), Method::DELETE, &of_dag, None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text());
    assert_eq!(count(of_dag.clone()).await, 0);
    let detail =
        api.send_as(Some(&api.admin_token), Method::DELETE, &of_dag, None).await.assert_error(StatusCode::NOT_FOUND);
    assert!(detail.contains("consumer"), "{detail}");

    let detail = api.get(&format!("{of_dag}?before=yesterday")).await.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(detail.contains("`before`"), "{detail}");
    assert_eq!(count("/api/v2/assets/31337/queuedEvents".into()).await, 0, "an unknown asset has none, as in Airflow");
}

#[tokio::test]
async fn events_are_filtered_ordered_and_show_the_runs_they_created() {
    let (api, ids) = lake().await;
    let orders = ids["s3://lake/orders"];
    let first = ok(post_event(&api, &api.admin_token, json!({"asset_id": orders})).await)["id"].as_i64().unwrap();
    let client = api.pool.get().await.unwrap();
    let extra = json!({"rows": 5});
    let produced = db::assets::record_event(
        &client,
        &NewAssetEvent {
            asset_id: orders,
            extra: &extra,
            source_dag_id: Some("producer"),
            source_task_id: Some("publish"),
            source_run_id: Some("r1"),
            source_map_index: 2,
            partition_key: None,
        },
    )
    .await
    .unwrap();
    let items = ok(post_event(&api, &api.admin_token, json!({"asset_id": ids["items"]})).await)["id"].as_i64().unwrap();

    assert_eq!(event_ids(&api, "").await, [first, produced.id, items], "oldest first");
    assert_eq!(event_ids(&api, "order_by=-timestamp").await, [items, produced.id, first]);
    assert_eq!(event_ids(&api, &format!("asset_id={orders}")).await, [first, produced.id]);
    for filter in ["source_dag_id=producer", "source_task_id=publish", "source_run_id=r1", "source_map_index=2"] {
        assert_eq!(event_ids(&api, filter).await, [produced.id], "{filter}");
    }
    assert_eq!(event_ids(&api, "source_map_index=-1").await, [first, items]);
    assert_eq!(event_ids(&api, "name_pattern=ITEMS").await, [items]);
    assert_eq!(event_ids(&api, "name_prefix_pattern=s3://").await, [first, produced.id]);
    let since = produced.timestamp.to_rfc3339();
    let since = url_encoded(&since);
    assert_eq!(event_ids(&api, &format!("timestamp_gte={since}")).await, [produced.id, items]);
    assert_eq!(event_ids(&api, &format!("timestamp_gt={since}")).await, [items]);
    assert_eq!(event_ids(&api, &format!("timestamp_lt={since}")).await, [first]);
    assert_eq!(
        event_ids(&api, &format!("timestamp_lte={since}&order_by=-source_map_index")).await,
        [produced.id, first]
    );
    let page = ok(api.get("/api/v2/assets/events?limit=1&offset=1").await);
    assert_eq!((page["asset_events"][0]["id"].as_i64(), page["total_entries"].as_i64()), (Some(produced.id), Some(3)));

    // The consumer's run consumed both events of `orders`; the later one triggered it.
    let (run_id, run_pk) = api.start_run(CONSUMER, r#"{"dag_run_id": "by_orders"}"#).await;
    db::assets::scheduling::link_events(&client, run_pk, &[first, produced.id]).await.unwrap();
    let page = ok(api.get(&format!("/api/v2/assets/events?asset_id={orders}")).await);
    let runs: Vec<(Value, Value, Value)> = page["asset_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let run = &e["created_dagruns"][0];
            (run["run_id"].clone(), run["dag_id"].clone(), run["triggering"].clone())
        })
        .collect();
    assert_eq!(
        runs,
        [(json!(run_id), json!("consumer"), json!(false)), (json!(run_id), json!("consumer"), json!(true))]
    );
    let run = &page["asset_events"][1]["created_dagruns"][0];
    assert_eq!(run["state"], "queued");
    assert!(run["start_date"].is_string(), "{run}");
    for field in ["logical_date", "end_date", "data_interval_start", "data_interval_end", "partition_key"] {
        assert!(run.get(field).is_some(), "{field} is present: {run}");
    }

    let upstream = ok(api.get(&format!("/api/v2/dags/consumer/dagRuns/{run_id}/upstreamAssetEvents")).await);
    assert_eq!(upstream["total_entries"], 2);
    let upstream_ids: Vec<i64> =
        upstream["asset_events"].as_array().unwrap().iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert_eq!(upstream_ids, [first, produced.id]);
    assert_eq!(upstream["asset_events"][1]["extra"], json!({"rows": 5}));

    let (manual, _) = api.start_run(PRODUCER, r#"{"dag_run_id": "by_hand"}"#).await;
    let none = ok(api.get(&format!("/api/v2/dags/producer/dagRuns/{manual}/upstreamAssetEvents")).await);
    assert_eq!(none, json!({"asset_events": [], "total_entries": 0}));
    api.get("/api/v2/dags/consumer/dagRuns/nope/upstreamAssetEvents").await.assert_error(StatusCode::NOT_FOUND);
    api.get("/api/v2/dags/nope/dagRuns/by_orders/upstreamAssetEvents").await.assert_error(StatusCode::NOT_FOUND);

    for (query, parameter) in [
        ("asset_id=one", "`asset_id`"),
        ("source_map_index=x", "`source_map_index`"),
        ("timestamp_gt=soon", "`timestamp_gt`"),
    ] {
        let detail =
            api.get(&format!("/api/v2/assets/events?{query}")).await.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
        assert!(detail.contains(parameter), "{query}: {detail}");
    }
    let detail = api.get("/api/v2/assets/events?order_by=uri").await.assert_error(StatusCode::BAD_REQUEST);
    assert!(detail.contains("source_task_id"), "{detail}");
}

/// `text` with the characters a query value cannot hold as is (`+`, `:`) percent-encoded.
fn url_encoded(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn materializing_an_asset_triggers_the_one_dag_that_produces_it() {
    let (api, ids) = lake().await;
    let operator = api.token_for(Role::Operator).await;
    let viewer = api.token_for(Role::Viewer).await;
    let path = |name: &str| format!("/api/v2/assets/{}/materialize", ids[name]);

    let run = ok(api.send_as(Some(&operator), Method::POST, &path("s3://lake/orders"), None).await);
    assert_eq!((run["dag_id"].clone(), run["state"].clone()), (json!("producer"), json!("queued")));
    assert_eq!(run["run_type"], "asset_materialization");
    assert_eq!(run["triggering_user_name"], "operator-user");
    assert!(run["dag_run_id"].as_str().unwrap().starts_with("asset_materialization__"), "{run}");

    let body = r#"{"dag_run_id": "rebuild_items", "conf": {}, "note": "after the fix"}"#;
    let run = ok(api.send_as(Some(&operator), Method::POST, &path("items"), Some(body)).await);
    assert_eq!((run["dag_run_id"].clone(), run["note"].clone()), (json!("rebuild_items"), json!("after the fix")));
    api.send_as(Some(&operator), Method::POST, &path("items"), Some(body)).await.assert_error(StatusCode::CONFLICT);
    ok(api.send_as(Some(&operator), Method::POST, &path("items"), Some("null")).await);

    let detail = api
        .send_as(Some(&operator), Method::POST, &path("s3://lake/raw"), None)
        .await
        .assert_error(StatusCode::NOT_FOUND);
    assert!(detail.contains("no DAG materializes"), "{detail}");
    api.send_as(Some(&operator), Method::POST, "/api/v2/assets/5555/materialize", None)
        .await
        .assert_error(StatusCode::NOT_FOUND);
    api.send_as(Some(&viewer), Method::POST, &path("items"), None).await.assert_error(StatusCode::FORBIDDEN);
    api.send_as(Some(&operator), Method::POST, &path("items"), Some("[1, 2]"))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    let detail = api
        .send_as(Some(&operator), Method::POST, &path("items"), Some(r#"{"conf": [1]}"#))
        .await
        .assert_error(StatusCode::BAD_REQUEST);
    assert!(detail.contains("`conf`"), "{detail}");

    api.add_dag(&PRODUCER.replace("dag_id: producer", "dag_id: second_producer")).await;
    let detail = api
        .send_as(Some(&operator), Method::POST, &path("s3://lake/orders"), None)
        .await
        .assert_error(StatusCode::CONFLICT);
    assert!(detail.contains("producer") && detail.contains("second_producer"), "{detail}");
}
