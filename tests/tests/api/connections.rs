//! `/api/v2/connections` against the real PostgreSQL: Airflow's shapes, the
//! password stored only as a Fernet token and never answered, secret extra
//! fields masked, filters, order, update masks, roles and key rotation.

use axum::http::{Method, StatusCode};
use gust_shared::{connections, secrets::Secrets};
use gust_tests::api::TestApi;
use gust_webapi::auth::Role;
use serde_json::{json, Value};

fn ok_json(reply: gust_tests::api::Reply, status: StatusCode) -> Value {
    assert_eq!(reply.status, status, "{}", reply.text());
    reply.json()
}

async fn with_key(key: &str) -> TestApi {
    let secrets = Secrets::from_keys(key).unwrap();
    TestApi::start_with(|state| state.with_secrets(secrets)).await
}

async fn create(api: &TestApi, body: Value) -> gust_tests::api::Reply {
    api.send_json(Method::POST, "/api/v2/connections", &body.to_string()).await
}

fn ids(list: &Value) -> Vec<&str> {
    list["connections"]
        .as_array()
        .unwrap_or_else(|| panic!("{list}"))
        .iter()
        .map(|c| c["connection_id"].as_str().unwrap())
        .collect()
}

/// The stored `(password_encrypted, extra)` of a connection, straight from the table.
async fn stored(api: &TestApi, id: &str) -> (Option<String>, Option<String>) {
    let db = api.pool.get().await.unwrap();
    let row = db
        .query_one("SELECT password_encrypted, extra FROM connections WHERE connection_id = $1", &[&id])
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test]
async fn a_connection_is_created_read_listed_changed_and_deleted_without_its_password_ever_answered() {
    let api = with_key(&Secrets::generate_key()).await;
    let body = json!({
        "connection_id": "warehouse", "conn_type": "postgres", "description": "the DWH", "host": "db.example",
        "login": "loader", "schema": "dwh", "port": 5432, "password": "hunter2-secret",
        "extra": r#"{"sslmode": "require", "api_key": "k-123456"}"#
    });
    let created = ok_json(create(&api, body).await, StatusCode::CREATED);
    assert_eq!(
        created,
        json!({"connection_id": "warehouse", "conn_type": "postgres", "description": "the DWH", "host": "db.example",
               "login": "loader", "schema": "dwh", "port": 5432, "password": "***",
               "extra": r#"{"api_key":"***","sslmode":"require"}"#, "team_name": null})
    );
    assert_eq!(ok_json(api.get("/api/v2/connections/warehouse").await, StatusCode::OK), created);
    assert_eq!(
        ok_json(api.get("/api/v2/connections").await, StatusCode::OK),
        json!({"connections": [created], "total_entries": 1})
    );

    let (password, extra) = stored(&api, "warehouse").await;
    let (password, extra) = (password.unwrap(), extra.unwrap());
    assert!(!password.contains("hunter2") && password.starts_with("gAAAAA"), "{password}");
    assert!(!extra.contains("k-123456") && extra.contains("require"), "{extra}");

    let patched = api
        .send_json(Method::PATCH, "/api/v2/connections/warehouse?update_mask=host", r#"{"host": "db2", "login": "x"}"#)
        .await;
    let patched = ok_json(patched, StatusCode::OK);
    assert_eq!((&patched["host"], &patched["login"]), (&json!("db2"), &json!("loader")), "{patched}");
    let cleared = api.send_json(Method::PATCH, "/api/v2/connections/warehouse", r#"{"password": null}"#).await;
    assert_eq!(ok_json(cleared, StatusCode::OK)["password"], Value::Null);

    let deleted = api.send_as(None, Method::DELETE, "/api/v2/connections/warehouse", None).await;
    assert_eq!(deleted.status, StatusCode::UNAUTHORIZED, "no token, no delete");
    let deleted =
        api.send(axum::http::Request::delete("/api/v2/connections/warehouse").body(Default::default()).unwrap()).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text());
    api.get("/api/v2/connections/warehouse").await.assert_error(StatusCode::NOT_FOUND);
    create(&api, json!({"connection_id": "a", "conn_type": "http"})).await;
    let error =
        create(&api, json!({"connection_id": "a", "conn_type": "http"})).await.assert_error(StatusCode::CONFLICT);
    assert!(error.contains("already exists"), "{error}");
}

#[tokio::test]
async fn connections_are_filtered_by_id_pattern_ordered_and_paged() {
    let api = with_key(&Secrets::generate_key()).await;
    for (id, kind) in [("s3_logs", "aws"), ("pg_main", "postgres"), ("pg_replica", "postgres"), ("api", "http")] {
        assert_eq!(create(&api, json!({"connection_id": id, "conn_type": kind})).await.status, StatusCode::CREATED);
    }
    let list = ok_json(api.get("/api/v2/connections?connection_id_pattern=pg_").await, StatusCode::OK);
    assert_eq!((ids(&list), &list["total_entries"]), (vec!["pg_main", "pg_replica"], &json!(2)));
    let list = ok_json(api.get("/api/v2/connections?order_by=-connection_id&limit=2").await, StatusCode::OK);
    assert_eq!((ids(&list), &list["total_entries"]), (vec!["s3_logs", "pg_replica"], &json!(4)));
    let list = ok_json(
        api.get("/api/v2/connections?order_by=conn_type&order_by=connection_id&offset=1").await,
        StatusCode::OK,
    );
    assert_eq!(ids(&list), ["api", "pg_main", "pg_replica"]);
    api.get("/api/v2/connections?order_by=password").await.assert_error(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_viewer_reads_connections_but_only_an_admin_writes_them() {
    let api = with_key(&Secrets::generate_key()).await;
    create(&api, json!({"connection_id": "c", "conn_type": "http", "password": "pw-123456"})).await;
    let viewer = api.token_for(Role::Viewer).await;
    let one = api.send_as(Some(&viewer), Method::GET, "/api/v2/connections/c", None).await;
    assert_eq!(ok_json(one, StatusCode::OK)["password"], "***");
    let body = json!({"connection_id": "d", "conn_type": "http"}).to_string();
    let post = api.send_as(Some(&viewer), Method::POST, "/api/v2/connections", Some(&body)).await;
    post.assert_error(StatusCode::FORBIDDEN);
    let op = api.token_for(Role::Operator).await;
    api.send_as(Some(&op), Method::PATCH, "/api/v2/connections/c", Some("{}"))
        .await
        .assert_error(StatusCode::FORBIDDEN);
    api.send_as(Some(&op), Method::DELETE, "/api/v2/connections/c", None).await.assert_error(StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn without_a_key_a_password_is_refused_naming_the_setting_and_nothing_is_stored() {
    let api = TestApi::start().await;
    let refused = create(&api, json!({"connection_id": "c", "conn_type": "http", "password": "pw"})).await;
    let error = refused.assert_error(StatusCode::SERVICE_UNAVAILABLE);
    assert!(error.contains("GUST__SECRETS__KEY"), "{error}");
    api.get("/api/v2/connections/c").await.assert_error(StatusCode::NOT_FOUND);
    let plain =
        create(&api, json!({"connection_id": "c", "conn_type": "http", "host": "h", "extra": "{\"timeout\": 5}"}))
            .await;
    assert_eq!(plain.status, StatusCode::CREATED, "a connection without secrets needs no key: {}", plain.text());
    let bad = create(&api, json!({"connection_id": "d", "conn_type": "http", "extra": "not json"})).await;
    assert!(bad.assert_error(StatusCode::UNPROCESSABLE_ENTITY).contains("JSON object"));
}

#[tokio::test]
async fn after_a_new_key_is_put_first_old_secrets_still_decrypt_and_rotation_moves_them_to_the_new_key() {
    let (old, new) = (Secrets::generate_key(), Secrets::generate_key());
    let api = with_key(&old).await;
    create(&api, json!({"connection_id": "c", "conn_type": "http", "password": "pw-rotate", "extra": "{\"token\": \"t-123456\"}"}))
        .await;
    let db = api.pool.get().await.unwrap();
    let both = Secrets::from_keys(&format!("{new},{old}")).unwrap().unwrap();
    let resolved = connections::resolve(&db, Some(&both), "c").await.unwrap();
    assert_eq!(resolved.password.as_deref(), Some("pw-rotate"));
    assert_eq!(resolved.extra_dejson()["token"], "t-123456");
    assert_eq!(connections::rotate_all(&db, &both).await.unwrap(), 1);
    let only_new = Secrets::from_keys(&new).unwrap().unwrap();
    let resolved = connections::resolve(&db, Some(&only_new), "c").await.unwrap();
    assert_eq!((resolved.password.as_deref(), resolved.secret_values().len()), (Some("pw-rotate"), 2));
    let only_old = Secrets::from_keys(&old).unwrap().unwrap();
    let error = connections::resolve(&db, Some(&only_old), "c").await.unwrap_err().to_string();
    assert!(error.contains("GUST__SECRETS__KEY"), "{error}");
}

#[tokio::test]
async fn answers_validate_against_the_airflow_python_client_models() {
    // The pinned official client, pip-installed on first use (fails, saying what to install, when it cannot be).
    let venv =
        tokio::task::spawn_blocking(|| gust_tests::python::venv("airflow-client", gust_tests::python::AIRFLOW_CLIENT))
            .await
            .expect("installing the Airflow client");
    let python = venv.join("bin/python");
    let api = with_key(&Secrets::generate_key()).await;
    let body = json!({"connection_id": "c", "conn_type": "http", "host": "h", "port": 80, "password": "pw-123456"});
    let one = ok_json(create(&api, body).await, StatusCode::CREATED);
    let list = ok_json(api.get("/api/v2/connections").await, StatusCode::OK);
    let script = "import sys\n\
        from airflow_client.client.models.connection_response import ConnectionResponse as R\n\
        from airflow_client.client.models.connection_collection_response import ConnectionCollectionResponse as C\n\
        r = R.from_json(sys.argv[1])\n\
        assert r.connection_id == 'c' and r.password == '***' and r.port == 80, r\n\
        assert C.from_json(sys.argv[2]).total_entries == 1\n";
    let output = std::process::Command::new(&python)
        .args(["-c", script, &one.to_string(), &list.to_string()])
        .output()
        .expect("run the Airflow client");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[tokio::test]
async fn connections_are_created_changed_and_deleted_in_bulk_with_passwords_encrypted() {
    let api = with_key(&Secrets::generate_key()).await;
    ok_json(create(&api, json!({"connection_id": "old", "conn_type": "http"})).await, StatusCode::CREATED);
    let body = json!({"actions": [
        {"action": "create", "entities": [{"connection_id": "db", "conn_type": "postgres", "password": "pw-123456"}]},
        {"action": "update", "entities": [{"connection_id": "db", "conn_type": "postgres", "host": "h", "port": 5433}], "update_mask": ["host"]},
        {"action": "delete", "entities": ["old"]},
    ]});
    let outcome = ok_json(api.send_json(Method::PATCH, "/api/v2/connections", &body.to_string()).await, StatusCode::OK);
    assert_eq!(
        outcome,
        json!({
            "create": {"success": ["db"], "errors": []},
            "update": {"success": ["db"], "errors": []},
            "delete": {"success": ["old"], "errors": []},
        })
    );
    let db = ok_json(api.get("/api/v2/connections/db").await, StatusCode::OK);
    assert_eq!((db["host"].as_str(), db["port"].as_i64(), db["password"].as_str()), (Some("h"), None, Some("***")));
    let (password, _) = stored(&api, "db").await;
    assert!(password.is_some_and(|p| !p.contains("pw-123456")));

    let no_key = TestApi::start().await;
    let secret = json!({"actions": [{"action": "create", "entities": [{"connection_id": "s", "conn_type": "http", "password": "p"}]}]});
    let reply = no_key.send_json(Method::PATCH, "/api/v2/connections", &secret.to_string()).await;
    assert!(reply.assert_error(StatusCode::SERVICE_UNAVAILABLE).contains("GUST__SECRETS__KEY"));
    no_key.get("/api/v2/connections/s").await.assert_error(StatusCode::NOT_FOUND);
}
