//! The admin areas of the API against the real PostgreSQL: the effective
//! configuration (`/config`), jobs from heartbeats, providers and plugins from
//! what workers advertise, one import error by id, and connection tests.

use axum::{
    body::Body,
    http::{header, Method, Request, StatusCode},
};
use gust_shared::settings::{ExposeConfig, Settings, TestConnection};
use gust_tests::api::TestApi;
use gust_webapi::auth::Role;
use serde_json::{json, Value};

fn ok_json(reply: gust_tests::api::Reply, status: StatusCode) -> Value {
    assert_eq!(reply.status, status, "{}", reply.text());
    reply.json()
}

async fn with_settings(change: impl FnOnce(&mut Settings)) -> TestApi {
    let mut settings = Settings::default();
    change(&mut settings);
    TestApi::start_with(|state| state.with_settings(settings)).await
}

#[tokio::test]
async fn the_configuration_is_hidden_unless_exposed_and_then_shows_no_secret() {
    let api = TestApi::start().await;
    let detail = api.get("/api/v2/config").await.assert_error(StatusCode::FORBIDDEN);
    assert!(detail.contains("GUST__WEBAPI__EXPOSE_CONFIG"), "{detail}");

    let api = with_settings(|s| {
        s.webapi.expose_config = ExposeConfig::True;
        s.auth.jwt_secret = Some("signing-secret-signing-secret-xx".into());
        s.database.url = "postgres://gust:db-pw@db:5432/gust".into();
    })
    .await;
    let config = ok_json(api.get("/api/v2/config").await, StatusCode::OK);
    let text = config.to_string();
    assert!(!text.contains("signing-secret") && !text.contains("db-pw"), "{text}");
    let auth = config["sections"].as_array().unwrap().iter().find(|s| s["name"] == "auth").unwrap();
    assert!(auth["options"].as_array().unwrap().contains(&json!({"key": "jwt_secret", "value": "< hidden >"})));

    let one = ok_json(api.get("/api/v2/config/section/database/option/url").await, StatusCode::OK);
    assert_eq!(
        one,
        json!({"sections": [{"name": "database", "options": [{"key": "url", "value": "postgres://gust:***@db:5432/gust"}]}]})
    );
    let request =
        Request::get("/api/v2/config?section=webapi").header(header::ACCEPT, "text/plain").body(Body::empty());
    let plain = api.send(request.unwrap()).await;
    assert_eq!(plain.status, StatusCode::OK);
    assert!(plain.text().starts_with("[webapi]\nbind = 127.0.0.1:8080\n"), "{}", plain.text());
    api.get("/api/v2/config?section=nope").await.assert_error(StatusCode::NOT_FOUND);
    api.get("/api/v2/config/section/webapi/option/nope").await.assert_error(StatusCode::NOT_FOUND);
    let viewer = api.token_for(Role::Viewer).await;
    api.send_as(Some(&viewer), Method::GET, "/api/v2/config", None).await.assert_error(StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn schedulers_and_workers_are_jobs_whose_state_follows_their_heartbeat() {
    let api = TestApi::start().await;
    let db = api.pool.get().await.unwrap();
    db.batch_execute(
        "INSERT INTO component_heartbeats (name, kind, hostname, pid, last_heartbeat_at, stopped_at) VALUES
            ('scheduler@a:1', 'scheduler', 'a', 1, now(), NULL),
            ('w1', 'worker', 'b', 2, now() - interval '1 hour', NULL),
            ('w2', 'worker', 'b', 3, now() - interval '1 hour', now() - interval '1 hour')",
    )
    .await
    .unwrap();
    let all = ok_json(api.get("/api/v2/jobs?order_by=hostname,-state").await, StatusCode::OK);
    assert_eq!(all["total_entries"], 3);
    let summary: Vec<(&str, &str, &str)> = all["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j["job_type"].as_str().unwrap(), j["state"].as_str().unwrap(), j["hostname"].as_str().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [("SchedulerJob", "running", "a"), ("WorkerJob", "success", "b"), ("WorkerJob", "failed", "b")]
    );
    let job = &all["jobs"][0];
    for field in [
        "id",
        "dag_id",
        "state",
        "job_type",
        "start_date",
        "end_date",
        "latest_heartbeat",
        "executor_class",
        "hostname",
        "unixname",
    ] {
        assert!(job.as_object().unwrap().contains_key(field), "{field} missing in {job}");
    }
    let alive = ok_json(api.get("/api/v2/jobs?is_alive=true").await, StatusCode::OK);
    assert_eq!(alive["total_entries"], 1);
    let workers = ok_json(api.get("/api/v2/jobs?job_type=WorkerJob&job_state=failed").await, StatusCode::OK);
    assert_eq!(workers["total_entries"], 1);
    let again = ok_json(api.get("/api/v2/jobs?hostname=a").await, StatusCode::OK);
    assert_eq!(again["jobs"][0]["id"], job["id"], "ids are stable");
    api.get("/api/v2/jobs?order_by=colour").await.assert_error(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn providers_and_plugins_are_the_built_in_families_and_the_custom_operators_of_live_workers() {
    let api = TestApi::start().await;
    let providers = ok_json(api.get("/api/v2/providers").await, StatusCode::OK);
    assert_eq!(providers["total_entries"], 3, "{providers}");
    assert_eq!(ok_json(api.get("/api/v2/plugins").await, StatusCode::OK), json!({"plugins": [], "total_entries": 0}));

    let operators = json!([
        {"name": "bash", "kind": "builtin", "version": "1"},
        {"name": "s3_copy", "kind": "custom", "path": "/plugins/gust-op-s3_copy", "version": "2.1", "description": "Copies S3 objects"},
        {"name": "broken", "kind": "custom", "path": "/plugins/gust-op-broken", "version": null, "describe_error": "--describe exited with 1"},
    ]);
    let db = api.pool.get().await.unwrap();
    db.execute(
        "INSERT INTO component_heartbeats (name, kind, hostname, pid, queues, operators) VALUES ('w1', 'worker', 'h', 1, '{default}', $1)",
        &[&operators],
    )
    .await
    .unwrap();
    let providers = ok_json(api.get("/api/v2/providers?offset=3").await, StatusCode::OK);
    assert_eq!(providers["total_entries"], 5);
    assert_eq!(providers["providers"][1]["package_name"], "gust-op-s3_copy");
    assert_eq!(providers["providers"][1]["version"], "2.1");
    assert!(providers["providers"][1]["documentation_url"].is_null());
    let plugins = ok_json(api.get("/api/v2/plugins").await, StatusCode::OK);
    assert_eq!(plugins["total_entries"], 2);
    assert_eq!(plugins["plugins"][1]["name"], "gust-op-s3_copy");
    assert_eq!(plugins["plugins"][1]["source"], "/plugins/gust-op-s3_copy on w1");
    assert_eq!(plugins["plugins"][1]["macros"], json!([]));
    let errors = ok_json(api.get("/api/v2/plugins/importErrors").await, StatusCode::OK);
    assert_eq!(
        errors,
        json!({"import_errors": [{"source": "/plugins/gust-op-broken on w1", "error": "--describe exited with 1"}], "total_entries": 1})
    );
}

#[tokio::test]
async fn one_import_error_is_read_by_its_id() {
    let api = TestApi::start().await;
    let db = api.pool.get().await.unwrap();
    gust_shared::db::import_errors::record(&db, "/dags/bad.yaml", "task `a`: unknown operator").await.unwrap();
    let list = ok_json(api.get("/api/v2/importErrors").await, StatusCode::OK);
    let id = list["import_errors"][0]["import_error_id"].as_i64().unwrap();
    let one = ok_json(api.get(&format!("/api/v2/importErrors/{id}")).await, StatusCode::OK);
    assert_eq!(one, list["import_errors"][0]);
    let missing = api.get(&format!("/api/v2/importErrors/{}", id + 1)).await.assert_error(StatusCode::NOT_FOUND);
    assert!(missing.contains("not found"), "{missing}");
    assert_eq!(api.get("/api/v2/importErrors/abc").await.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn connection_tests_are_refused_unless_enabled() {
    let api = TestApi::start().await;
    let body = json!({"connection_id": "c", "conn_type": "postgres"}).to_string();
    let detail =
        api.send_json(Method::POST, "/api/v2/connections/test", &body).await.assert_error(StatusCode::FORBIDDEN);
    assert!(detail.contains("GUST__WEBAPI__TEST_CONNECTION"), "{detail}");
    api.send_json(Method::POST, "/api/v2/connections/enqueue-test", &body).await.assert_error(StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_enabled_test_connects_to_postgres_and_reports_a_refused_port() {
    let api = with_settings(|s| s.webapi.test_connection = TestConnection::Enabled).await;
    let works = json!({"connection_id": "pg", "conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": "postgres"});
    let reply = api.send_json(Method::POST, "/api/v2/connections/test", &works.to_string()).await;
    let answer = ok_json(reply, StatusCode::OK);
    assert_eq!(answer["status"], true, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("SELECT 1"), "{answer}");
    let closed =
        json!({"connection_id": "pg", "conn_type": "postgres", "host": "127.0.0.1", "port": 1, "password": "pw"});
    let answer =
        ok_json(api.send_json(Method::POST, "/api/v2/connections/test", &closed.to_string()).await, StatusCode::OK);
    assert_eq!(answer["status"], false, "{answer}");
    let odd = json!({"connection_id": "x", "conn_type": "ftp"});
    let answer =
        ok_json(api.send_json(Method::POST, "/api/v2/connections/test", &odd.to_string()).await, StatusCode::OK);
    assert!(answer["message"].as_str().unwrap().contains("postgres and http"), "{answer}");
}

#[tokio::test]
async fn an_enqueued_http_test_runs_in_the_background_and_can_save_the_connection() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buffer = [0u8; 4096];
            let _ = socket.read(&mut buffer).await;
            let _ = socket.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n").await;
        }
    });
    let api = with_settings(|s| s.webapi.test_connection = TestConnection::Enabled).await;
    let body = json!({"connection_id": "web", "conn_type": "http", "host": "127.0.0.1", "port": port, "commit_on_success": true, "queue": null});
    let queued = ok_json(
        api.send_json(Method::POST, "/api/v2/connections/enqueue-test", &body.to_string()).await,
        StatusCode::ACCEPTED,
    );
    assert_eq!((queued["connection_id"].as_str(), queued["state"].as_str()), (Some("web"), Some("pending")));
    let token = queued["token"].as_str().unwrap();
    let mut polled = Value::Null;
    for _ in 0..100 {
        let request = Request::get("/api/v2/connections/enqueue-test")
            .header("Airflow-Connection-Test-Token", token)
            .body(Body::empty())
            .unwrap();
        polled = ok_json(api.send(request).await, StatusCode::OK);
        if polled["state"] == "success" || polled["state"] == "failed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(polled["state"], "success", "{polled}");
    assert!(polled["result_message"].as_str().unwrap().contains("204"), "{polled}");
    assert_eq!(ok_json(api.get("/api/v2/connections/web").await, StatusCode::OK)["port"], port);

    let executor = json!({"connection_id": "web", "conn_type": "http", "executor": "CeleryExecutor"}).to_string();
    let reply = api.send_json(Method::POST, "/api/v2/connections/enqueue-test", &executor).await;
    assert!(reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY).contains("executor"));
    let request = Request::get("/api/v2/connections/enqueue-test")
        .header("Airflow-Connection-Test-Token", "nope")
        .body(Body::empty())
        .unwrap();
    api.send(request).await.assert_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn default_connections_are_created_once_and_existing_ones_are_kept() {
    let api = TestApi::start().await;
    let mine = json!({"connection_id": "http_default", "conn_type": "http", "host": "mine"}).to_string();
    assert_eq!(api.send_json(Method::POST, "/api/v2/connections", &mine).await.status, StatusCode::CREATED);
    for _ in 0..2 {
        let reply = api.send(Request::post("/api/v2/connections/defaults").body(Body::empty()).unwrap()).await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text());
    }
    let list = ok_json(api.get("/api/v2/connections?order_by=connection_id").await, StatusCode::OK);
    assert_eq!(list["total_entries"], 2);
    assert_eq!(list["connections"][0]["host"], "mine");
    assert_eq!(list["connections"][1]["connection_id"], "postgres_default");
    let operator = api.token_for(Role::Operator).await;
    let reply = api.send_as(Some(&operator), Method::POST, "/api/v2/connections/defaults", None).await;
    reply.assert_error(StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn answers_validate_against_the_airflow_python_client_models() {
    let venv =
        tokio::task::spawn_blocking(|| gust_tests::python::venv("airflow-client", gust_tests::python::AIRFLOW_CLIENT))
            .await
            .expect("installing the Airflow client");
    let api = with_settings(|s| s.webapi.expose_config = ExposeConfig::True).await;
    let db = api.pool.get().await.unwrap();
    db.batch_execute(
        "INSERT INTO component_heartbeats (name, kind, hostname, pid, operators) VALUES ('w1', 'worker', 'h', 1,
            '[{\"name\": \"s3\", \"kind\": \"custom\", \"path\": \"/p/gust-op-s3\", \"version\": \"1\"}]')",
    )
    .await
    .unwrap();
    gust_shared::db::import_errors::record(&db, "/dags/bad.yaml", "bad").await.unwrap();
    let bulk = json!({"actions": [{"action": "create", "entities": [{"name": "p", "slots": 1}]},
        {"action": "delete", "entities": ["nope"]}]});
    let answers = [
        (
            "bulk_response",
            "BulkResponse",
            ok_json(api.send_json(Method::PATCH, "/api/v2/pools", &bulk.to_string()).await, StatusCode::OK),
        ),
        ("pool_response", "PoolResponse", ok_json(api.get("/api/v2/pools/p").await, StatusCode::OK)),
        ("config", "Config", ok_json(api.get("/api/v2/config").await, StatusCode::OK)),
        ("job_collection_response", "JobCollectionResponse", ok_json(api.get("/api/v2/jobs").await, StatusCode::OK)),
        (
            "provider_collection_response",
            "ProviderCollectionResponse",
            ok_json(api.get("/api/v2/providers").await, StatusCode::OK),
        ),
        (
            "plugin_collection_response",
            "PluginCollectionResponse",
            ok_json(api.get("/api/v2/plugins").await, StatusCode::OK),
        ),
        (
            "plugin_import_error_collection_response",
            "PluginImportErrorCollectionResponse",
            ok_json(api.get("/api/v2/plugins/importErrors").await, StatusCode::OK),
        ),
    ];
    let mut script = String::from("import sys, importlib\n");
    for (index, (module, class, _)) in answers.iter().enumerate() {
        script.push_str(&format!(
            "m = importlib.import_module('airflow_client.client.models.{module}')\n\
             assert getattr(m, '{class}').from_json(sys.argv[{}]) is not None\n",
            index + 1
        ));
    }
    let output = std::process::Command::new(venv.join("bin/python"))
        .arg("-c")
        .arg(&script)
        .args(answers.iter().map(|(_, _, answer)| answer.to_string()))
        .output()
        .expect("run the Airflow client");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}
