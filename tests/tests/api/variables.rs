//! `/api/v2/variables` against the real PostgreSQL on 127.0.0.1:5432:
//! Airflow's shapes, secret values masked, roles, and a 4xx JSON error for
//! every client mistake.

use axum::http::{Method, StatusCode};
use gust_tests::{api::TestApi, python};
use gust_webapi::auth::Role;
use serde_json::{json, Value};

fn ok_json(reply: gust_tests::api::Reply, status: StatusCode) -> Value {
    assert_eq!(reply.status, status, "{}", reply.text());
    reply.json()
}

async fn create(api: &TestApi, body: Value) -> gust_tests::api::Reply {
    api.send_json(Method::POST, "/api/v2/variables", &body.to_string()).await
}

async fn delete(api: &TestApi, key: &str) -> gust_tests::api::Reply {
    api.send(axum::http::Request::delete(format!("/api/v2/variables/{key}")).body(Default::default()).unwrap()).await
}

fn keys(list: &Value) -> Vec<&str> {
    list["variables"]
        .as_array()
        .unwrap_or_else(|| panic!("{list}"))
        .iter()
        .map(|v| v["key"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_variable_is_created_read_listed_changed_and_deleted() {
    let api = TestApi::start().await;
    let created =
        create(&api, json!({"key": "bucket", "value": "s3://warehouse", "description": "where loads land"})).await;
    let created = ok_json(created, StatusCode::CREATED);
    assert_eq!(
        created,
        json!({"key": "bucket", "value": "s3://warehouse", "description": "where loads land", "is_encrypted": false, "team_name": null})
    );

    let one = ok_json(api.get("/api/v2/variables/bucket").await, StatusCode::OK);
    assert_eq!(one, created);
    let list = ok_json(api.get("/api/v2/variables").await, StatusCode::OK);
    assert_eq!(list, json!({"variables": [created], "total_entries": 1}));

    let patched = api
        .send_json(
            Method::PATCH,
            "/api/v2/variables/bucket",
            r#"{"key": "bucket", "value": "s3://other", "description": null}"#,
        )
        .await;
    let patched = ok_json(patched, StatusCode::OK);
    assert_eq!((&patched["value"], &patched["description"]), (&json!("s3://other"), &Value::Null), "{patched}");
    let masked = api
        .send_json(
            Method::PATCH,
            "/api/v2/variables/bucket?update_mask=description",
            r#"{"key": "bucket", "value": "ignored", "description": "d"}"#,
        )
        .await;
    let masked = ok_json(masked, StatusCode::OK);
    assert_eq!((&masked["value"], &masked["description"]), (&json!("s3://other"), &json!("d")), "{masked}");

    let deleted = delete(&api, "bucket").await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text());
    assert!(deleted.body.is_empty());
    api.get("/api/v2/variables/bucket").await.assert_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_duplicate_variable_key_is_a_conflict() {
    let api = TestApi::start().await;
    ok_json(create(&api, json!({"key": "k", "value": "1"})).await, StatusCode::CREATED);
    let detail = create(&api, json!({"key": "k", "value": "2"})).await.assert_error(StatusCode::CONFLICT);
    assert!(detail.contains("`k` already exists"), "{detail}");
    let kept = ok_json(api.get("/api/v2/variables/k").await, StatusCode::OK);
    assert_eq!(kept["value"], "1", "the first value stays");
}

#[tokio::test]
async fn an_unknown_variable_is_not_found_by_name_for_every_method() {
    let api = TestApi::start().await;
    let detail = api.get("/api/v2/variables/nope").await.assert_error(StatusCode::NOT_FOUND);
    assert!(detail.contains("`nope`"), "{detail}");
    let patch = api.send_json(Method::PATCH, "/api/v2/variables/nope", r#"{"key": "nope", "value": "x"}"#).await;
    assert!(patch.assert_error(StatusCode::NOT_FOUND).contains("`nope`"));
    assert!(delete(&api, "nope").await.assert_error(StatusCode::NOT_FOUND).contains("`nope`"));
}

#[tokio::test]
async fn lists_page_filter_by_key_pattern_and_order_by_airflows_fields() {
    let api = TestApi::start().await;
    for (key, value) in [("db_host", "c"), ("s3_bucket", "a"), ("db_port", "b"), ("region", "d")] {
        ok_json(create(&api, json!({"key": key, "value": value})).await, StatusCode::CREATED);
    }
    let all = ok_json(api.get("/api/v2/variables").await, StatusCode::OK);
    assert_eq!(keys(&all), ["db_host", "s3_bucket", "db_port", "region"], "creation order by default, as Airflow's id");

    let page = ok_json(api.get("/api/v2/variables?limit=2&offset=1&order_by=key").await, StatusCode::OK);
    assert_eq!(page["total_entries"], 4, "{page}");
    assert_eq!(keys(&page), ["db_port", "region"]);
    let by_value = ok_json(api.get("/api/v2/variables?order_by=-_val").await, StatusCode::OK);
    assert_eq!(keys(&by_value), ["region", "db_host", "db_port", "s3_bucket"]);
    let by_id = ok_json(api.get("/api/v2/variables?order_by=-id&limit=1").await, StatusCode::OK);
    assert_eq!(keys(&by_id), ["region"]);
    ok_json(api.get("/api/v2/variables?order_by=is_encrypted&order_by=description").await, StatusCode::OK);

    let filtered = ok_json(api.get("/api/v2/variables?variable_key_pattern=DB_&order_by=key").await, StatusCode::OK);
    assert_eq!((filtered["total_entries"].clone(), keys(&filtered)), (json!(2), vec!["db_host", "db_port"]));
    let either =
        ok_json(api.get("/api/v2/variables?variable_key_pattern=bucket|region&order_by=key").await, StatusCode::OK);
    assert_eq!(keys(&either), ["region", "s3_bucket"]);
    let none = ok_json(api.get("/api/v2/variables?variable_key_pattern=zzz").await, StatusCode::OK);
    assert_eq!(none, json!({"variables": [], "total_entries": 0}));

    let detail = api.get("/api/v2/variables?order_by=colour").await.assert_error(StatusCode::BAD_REQUEST);
    assert!(detail.contains("key, id, _val, description, is_encrypted"), "{detail}");
    api.get("/api/v2/variables?limit=-1").await.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn values_of_variables_with_secret_looking_keys_are_masked() {
    let api = TestApi::start().await;
    let created =
        ok_json(create(&api, json!({"key": "warehouse_PASSWORD", "value": "hunter2"})).await, StatusCode::CREATED);
    assert_eq!(created["value"], "***", "{created}");
    ok_json(create(&api, json!({"key": "slack_token", "value": "xoxb"})).await, StatusCode::CREATED);
    ok_json(
        create(&api, json!({"key": "conn", "value": r#"{"host": "h", "api_key": "k"}"#})).await,
        StatusCode::CREATED,
    );
    assert_eq!(ok_json(api.get("/api/v2/variables/warehouse_PASSWORD").await, StatusCode::OK)["value"], "***");
    let list = ok_json(api.get("/api/v2/variables?order_by=key").await, StatusCode::OK);
    let values: Vec<&Value> = list["variables"].as_array().unwrap().iter().map(|v| &v["value"]).collect();
    assert_eq!(values, [&json!(r#"{"api_key":"***","host":"h"}"#), &json!("***"), &json!("***")], "{list}");
    assert!(!list.to_string().contains("hunter2") && !list.to_string().contains("xoxb"), "{list}");
}

#[tokio::test]
async fn a_value_that_is_not_a_string_must_be_json_encoded() {
    let api = TestApi::start().await;
    for value in [json!({"a": 1}), json!(3), json!(null), json!(["x"])] {
        let detail =
            create(&api, json!({"key": "cfg", "value": value})).await.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
        assert!(detail.contains("must be a string") && detail.contains("JSON-encoded"), "{detail}");
    }
    ok_json(create(&api, json!({"key": "cfg", "value": "{\"a\": 1}"})).await, StatusCode::CREATED);
    let patch = api.send_json(Method::PATCH, "/api/v2/variables/cfg", r#"{"key": "cfg", "value": 5}"#).await;
    assert!(patch.assert_error(StatusCode::UNPROCESSABLE_ENTITY).contains("must be a string"));
}

#[tokio::test]
async fn bad_bodies_are_client_errors_never_server_errors() {
    let api = TestApi::start().await;
    let empty = create(&api, json!({"key": "", "value": "x"})).await.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(empty.contains("must not be empty"), "{empty}");
    let long = create(&api, json!({"key": "k".repeat(251), "value": "x"}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(long.contains("250"), "{long}");
    ok_json(create(&api, json!({"key": "k".repeat(250), "value": "x"})).await, StatusCode::CREATED);
    create(&api, json!({"value": "x"})).await.assert_error(StatusCode::BAD_REQUEST);
    create(&api, json!({"key": "no_value"})).await.assert_error(StatusCode::BAD_REQUEST);
    let unknown = create(&api, json!({"key": "k2", "value": "x", "colour": "red"})).await;
    assert!(unknown.status.is_client_error(), "{}", unknown.text());
    unknown.assert_error(unknown.status);
    let team = create(&api, json!({"key": "k3", "value": "x", "team_name": "a"})).await;
    assert!(team.assert_error(StatusCode::UNPROCESSABLE_ENTITY).contains("team_name"));
    let malformed = api.send_json(Method::POST, "/api/v2/variables", "{not json").await;
    assert!(malformed.status.is_client_error());
    malformed.assert_error(malformed.status);

    ok_json(create(&api, json!({"key": "a", "value": "x"})).await, StatusCode::CREATED);
    let rename = api.send_json(Method::PATCH, "/api/v2/variables/a", r#"{"key": "b", "value": "y"}"#).await;
    assert!(rename.assert_error(StatusCode::BAD_REQUEST).contains("cannot be renamed"));
    let mask = api.send_json(Method::PATCH, "/api/v2/variables/a?update_mask=colour", r#"{"key": "a"}"#).await;
    assert!(mask.assert_error(StatusCode::BAD_REQUEST).contains("`colour`"));
}

#[tokio::test]
async fn a_viewer_can_read_variables_but_not_change_them() {
    let api = TestApi::start().await;
    ok_json(create(&api, json!({"key": "k", "value": "v"})).await, StatusCode::CREATED);
    let viewer = api.token_for(Role::Viewer).await;
    let list = api.send_as(Some(&viewer), Method::GET, "/api/v2/variables", None).await;
    assert_eq!(ok_json(list, StatusCode::OK)["total_entries"], 1);
    let one = api.send_as(Some(&viewer), Method::GET, "/api/v2/variables/k", None).await;
    assert_eq!(ok_json(one, StatusCode::OK)["value"], "v");
    let body = json!({"key": "new", "value": "v"}).to_string();
    let post = api.send_as(Some(&viewer), Method::POST, "/api/v2/variables", Some(&body)).await;
    assert!(post.assert_error(StatusCode::FORBIDDEN).contains("admin"));
    api.send_as(Some(&viewer), Method::DELETE, "/api/v2/variables/k", None).await.assert_error(StatusCode::FORBIDDEN);
    api.send_as(Some(&viewer), Method::PATCH, "/api/v2/variables/k", Some(r#"{"value": "x"}"#))
        .await
        .assert_error(StatusCode::FORBIDDEN);
    api.send_as(None, Method::GET, "/api/v2/variables", None).await.assert_error(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_operator_cannot_create_variables() {
    let api = TestApi::start().await;
    let operator = api.token_for(Role::Operator).await;
    let body = json!({"key": "new", "value": "v"}).to_string();
    let post = api.send_as(Some(&operator), Method::POST, "/api/v2/variables", Some(&body)).await;
    assert!(post.assert_error(StatusCode::FORBIDDEN).contains("admin"));
    api.get("/api/v2/variables/new").await.assert_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn answers_validate_against_the_airflow_python_client_models() {
    // The pinned official client, pip-installed on first use (fails, saying what to install, when it cannot be).
    let venv = tokio::task::spawn_blocking(|| python::venv("airflow-client", python::AIRFLOW_CLIENT))
        .await
        .expect("installing the Airflow client");
    let python = venv.join("bin/python");
    let api = TestApi::start().await;
    let one = ok_json(create(&api, json!({"key": "k", "value": "v", "description": null})).await, StatusCode::CREATED);
    let list = ok_json(api.get("/api/v2/variables").await, StatusCode::OK);
    let script = "import sys\n\
        from airflow_client.client.models.variable_response import VariableResponse as R\n\
        from airflow_client.client.models.variable_collection_response import VariableCollectionResponse as C\n\
        assert R.from_json(sys.argv[1]).key == 'k'\n\
        assert C.from_json(sys.argv[2]).total_entries == 1\n";
    let output = std::process::Command::new(&python)
        .args(["-c", script, &one.to_string(), &list.to_string()])
        .output()
        .expect("run the Airflow client");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[tokio::test]
async fn variables_are_created_changed_and_deleted_in_bulk_with_secrets_still_masked() {
    let api = TestApi::start().await;
    ok_json(create(&api, json!({"key": "gone", "value": "x"})).await, StatusCode::CREATED);
    let body = json!({"actions": [
        {"action": "create", "entities": [{"key": "region", "value": "eu"}, {"key": "api_token", "value": "t0ps3cret"}]},
        {"action": "update", "entities": [{"key": "region", "value": "us", "description": "where"}], "update_mask": ["description"]},
        {"action": "delete", "entities": [{"key": "gone", "value": "ignored"}, "missing"], "action_on_non_existence": "skip"},
    ]});
    let outcome = ok_json(api.send_json(Method::PATCH, "/api/v2/variables", &body.to_string()).await, StatusCode::OK);
    assert_eq!(
        outcome,
        json!({
            "create": {"success": ["region", "api_token"], "errors": []},
            "update": {"success": ["region"], "errors": []},
            "delete": {"success": ["gone"], "errors": []},
        })
    );
    let region = ok_json(api.get("/api/v2/variables/region").await, StatusCode::OK);
    assert_eq!((region["value"].as_str(), region["description"].as_str()), (Some("eu"), Some("where")));
    assert!(region["team_name"].is_null() && region.as_object().unwrap().contains_key("team_name"), "{region}");
    assert_eq!(ok_json(api.get("/api/v2/variables/api_token").await, StatusCode::OK)["value"], "***");

    let missing = json!({"actions": [{"action": "update", "entities": [{"key": "nope", "value": "v"}]},
        {"action": "create", "entities": [{"key": "n", "value": ""}]}]});
    let outcome =
        ok_json(api.send_json(Method::PATCH, "/api/v2/variables", &missing.to_string()).await, StatusCode::OK);
    assert_eq!(outcome["update"]["errors"][0]["status_code"], 404, "{outcome}");
    assert!(outcome["update"]["errors"][0]["error"].as_str().unwrap().contains("`nope`"), "{outcome}");
    assert_eq!(outcome["create"]["success"], json!(["n"]), "{outcome}");
    // An entity that does not fit the schema makes the whole body a 422, as pydantic does; nothing changes.
    let not_a_string = json!({"actions": [{"action": "create", "entities": [{"key": "m", "value": 3}]}]});
    let detail = api
        .send_json(Method::PATCH, "/api/v2/variables", &not_a_string.to_string())
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(detail.contains("must be a string"), "{detail}");
    api.get("/api/v2/variables/m").await.assert_error(StatusCode::NOT_FOUND);
    let operator = api.token_for(Role::Operator).await;
    let empty = json!({"actions": []}).to_string();
    api.send_as(Some(&operator), Method::PATCH, "/api/v2/variables", Some(&empty))
        .await
        .assert_error(StatusCode::FORBIDDEN);
}
