//! TLS end to end, with a CA the test makes: a stack whose every connection
//! is encrypted and verified. RabbitMQ speaks only `amqps://`; PostgreSQL
//! takes TCP connections only over TLS and only with a client certificate
//! of the CA (`sslmode=verify-full`, `sslcert`/`sslkey`); the webapi serves
//! HTTPS itself (`GUST__WEBAPI__TLS_CERT`/`_KEY`). A client that trusts
//! another CA is refused by each.

use gust_shared::settings::AmqpSettings;
use gust_tests::{
    postgres_servers::PostgresTlsServer, rabbitmq_cluster::RabbitCluster, test_ca::TestCa, StackOptions, TestStack,
    ADMIN_PASSWORD, ADMIN_USER,
};
use serde_json::{json, Value};

const DAG: &str = "dag_id: sealed\ntasks:\n  - {id: hello, operator: bash, command: 'echo over tls'}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stack_runs_with_tls_to_rabbitmq_postgresql_and_its_api_clients() {
    let ca = TestCa::new("gust test CA");
    let client = ca.client("gust-client", "postgres");
    let rabbit = RabbitCluster::start_tls(&ca).await;
    let postgres = PostgresTlsServer::start(&ca).await;
    let options = StackOptions {
        in_process_engine: false,
        database_server: Some(postgres.server_url("localhost", &ca.ca_file(), &client)),
        amqp_url: Some(rabbit.urls()),
        amqp_tls_ca_file: Some(ca.ca_file()),
        ..StackOptions::default()
    };
    let stack = TestStack::spawn_with(&[("sealed.yaml", DAG)], options).await;
    let _scheduler = stack.start_process("gust-scheduler", "scheduler");
    let _worker = stack.start_process("gust-worker", "worker");
    let web = ca.server("webapi", &["localhost", "127.0.0.1"]);
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let webapi = stack.start_process_with("gust-webapi", "webapi", |settings| {
        settings.webapi.bind = format!("127.0.0.1:{port}");
        settings.webapi.tls_cert = Some(web.cert.clone());
        settings.webapi.tls_key = Some(web.key.clone());
    });

    let ca_pem = std::fs::read(ca.ca_file()).expect("reading the CA certificate");
    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca_pem).expect("a PEM certificate"))
        .build()
        .expect("an HTTPS client");
    let base = format!("https://localhost:{port}");
    let health: Value = stack
        .eventually("the webapi to answer over HTTPS", || async {
            let reply = https.get(format!("{base}/api/v2/monitor/health")).send().await.ok()?;
            reply.json().await.ok()
        })
        .await;
    assert_eq!(health["metadatabase"]["status"], "healthy", "{health}");
    assert_eq!(health["gust"]["broker"]["status"], "healthy", "the webapi reaches amqps:// with the CA file: {health}");

    let login: Value = https
        .post(format!("{base}/auth/token"))
        .json(&json!({"username": ADMIN_USER, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .expect("logging in over HTTPS")
        .json()
        .await
        .expect("a token");
    let token = login["access_token"].as_str().expect("an access token");
    stack.wait_for_dag("sealed").await;
    let run: Value = https
        .post(format!("{base}/api/v2/dags/sealed/dagRuns"))
        .bearer_auth(token)
        .json(&json!({"logical_date": null}))
        .send()
        .await
        .expect("triggering over HTTPS")
        .json()
        .await
        .expect("the run");
    let run_id = run["dag_run_id"].as_str().unwrap_or_else(|| panic!("a run id in {run}"));
    assert_eq!(stack.wait_for_run("sealed", run_id).await, "success");
    assert!(stack.log_text("sealed", run_id, "hello", 1).await.contains("over tls"));

    // Every connection of the stack to PostgreSQL is encrypted (pg_hba.conf allows nothing else over TCP).
    let encrypted = postgres
        .psql("SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.datname LIKE 'gust_test_%'")
        .await;
    let (with_tls, without) = encrypted.trim().split_once('|').expect("two counts");
    assert!(with_tls.parse::<u32>().unwrap_or(0) > 0 && without == "0", "TLS / plain connections: {encrypted}");
    // The webapi speaks only HTTPS.
    assert!(reqwest::get(format!("http://127.0.0.1:{port}/api/v2/monitor/health")).await.is_err());
    assert!(webapi.output().contains("listening (HTTPS)"), "{}", webapi.output());

    // A client that trusts another CA is refused, with an error that says why.
    let stranger = TestCa::new("another CA");
    let url = postgres.server_url("localhost", &stranger.ca_file(), &client);
    let error = gust_shared::db::connect(&url, 1).await.expect_err("a server of an unknown CA is refused").to_string();
    assert!(error.contains("certificate") || error.contains("UnknownIssuer"), "{error}");
    let amqp = AmqpSettings { url: rabbit.urls(), tls_ca_file: Some(stranger.ca_file()), ..AmqpSettings::default() };
    let error = gust_shared::amqp::connect_to(&amqp, "gust-tests-stranger").await.expect_err("refused").to_string();
    assert!(error.contains("certificate") || error.contains("UnknownIssuer"), "{error}");
    assert!(!error.contains("guest:guest"), "the password is not shown: {error}");
    stack.stop().await;
}
