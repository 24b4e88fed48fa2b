//! The API's path and query parsing on untrusted input: property tests
//! (proptest) that send every operation of the OpenAPI document, and every
//! UI page, with arbitrary path segments and query strings through the whole
//! router, in process. proptest rather than cargo-fuzz, which needs a nightly
//! toolchain that neither the developers' machines nor CI have; a fixed number
//! of cases keeps the run to seconds, and a failure is shrunk to a small
//! request and recorded under `proptest-regressions/`.
//!
//! The property: whatever the path and the query, the answer is below 500 (a
//! handler's panic would be a 500: `CatchPanicLayer` turns it into one), and
//! an error of `/api/v2` has the API's JSON shape with a detail. The seed
//! corpus `tests/corpus/api/requests.txt` holds odd requests found by hand
//! and by these properties; each is sent as well.

use std::cell::Cell;

use axum::{
    body::Body,
    http::{header, Method, Request, StatusCode},
};
use gust_tests::api::{Reply, TestApi, ETL_DAG};
use proptest::{
    prelude::*,
    sample::select,
    test_runner::{Config, TestCaseError, TestRunner},
};
use serde_json::Value;

/// One operation: its method, its path template (`/api/v2/dags/{dag_id}`) and its query parameters.
#[derive(Debug, Clone)]
struct Operation {
    method: Method,
    path: String,
    query: Vec<String>,
}

/// The UI's pages, as `webapi/src/ui/mod.rs` routes them (GET only: its forms need a page first).
const UI_PAGES: &[&str] = &[
    "/",
    "/login",
    "/static/{name}",
    "/dags",
    "/dags/{dag_id}",
    "/dags/{dag_id}/graph",
    "/dags/{dag_id}/gantt",
    "/dags/{dag_id}/runs",
    "/dags/{dag_id}/code",
    "/dags/{dag_id}/params",
    "/dags/{dag_id}/trigger",
    "/dags/{dag_id}/backfill",
    "/dags/{dag_id}/runs/{run_id}",
    "/dags/{dag_id}/runs/{run_id}/clear",
    "/dags/{dag_id}/runs/{run_id}/live",
    "/dags/{dag_id}/runs/{run_id}/tasks/{task_id}",
    "/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/mapped/{map_index}",
    "/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/log",
    "/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/log.txt",
    "/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/clear",
    "/pools",
    "/variables",
    "/import-errors",
    "/dead-letters",
    "/users",
];

/// Query parameters the UI's pages read, besides the API's.
const UI_QUERY: &[&str] = &["page", "search", "state", "tag", "paused", "try", "base_date", "num_runs", "after"];

/// Every operation of the OpenAPI document, and the UI's pages.
fn operations() -> Vec<Operation> {
    let document = serde_json::to_value(gust_webapi::openapi_document()).expect("the document is JSON");
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            let Ok(method) = method.to_uppercase().parse::<Method>() else { continue };
            let query = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|parameter| parameter["in"] == "query")
                .filter_map(|parameter| parameter["name"].as_str().map(str::to_string))
                .collect();
            operations.push(Operation { method, path: path.clone(), query });
        }
    }
    assert!(operations.len() > 40, "the OpenAPI document lists only {} operations", operations.len());
    operations.extend(UI_PAGES.iter().map(|page| Operation {
        method: Method::GET,
        path: page.to_string(),
        query: UI_QUERY.iter().map(|name| name.to_string()).collect(),
    }));
    operations
}

/// Path segments and query values that name what the test database holds, or are odd on purpose.
const KNOWN: &[&str] = &[
    "etl",
    "extract",
    "load",
    "r1",
    "ghost",
    "default_pool",
    "admin",
    "1",
    "0",
    "-1",
    "2147483648",
    "99999999999999999999",
    "true",
    "~",
    ".",
    "..",
    "%2e%2e",
    "%2F",
    "a%2Fb",
    "%00",
    "%zz",
    "%",
    "%ff%fe",
    "%E2%80%AE",
    "%0d%0aX-Injected:%201",
    "+",
    "%20",
    "null",
    "[]",
    "{}",
    "'",
    "%22",
    "%5C",
    "running",
    "success",
    "failed",
    "queued",
    "-start_date",
    "dag_id",
    "2026-01-01",
    "2026-01-01T00:00:00Z",
    "2026-13-45T99:00:00Z",
    "1e999",
    "NaN",
    "a,b",
    "*",
    "%25",
];

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A path segment or query value: a known one, or any text, encoded.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![2 => select(KNOWN).prop_map(str::to_string), 1 => ".{0,24}".prop_map(|text| encode(&text))]
}

/// One request: an operation, its path filled in, and a query string.
fn request(operations: Vec<Operation>) -> impl Strategy<Value = (Method, String)> {
    select(operations).prop_flat_map(|operation| {
        let names = if operation.query.is_empty() { vec!["limit".to_string()] } else { operation.query.clone() };
        let name = prop_oneof![3 => select(names), 1 => word()];
        (
            Just(operation),
            prop::collection::vec(word(), 8),
            prop::collection::vec((name, word()), 0..5),
            prop::option::weighted(0.1, word()),
        )
            .prop_map(|(operation, segments, query, raw_query)| {
                let mut segments = segments.into_iter();
                let path: Vec<String> = operation
                    .path
                    .split('/')
                    .map(
                        |part| {
                            if part.starts_with('{') {
                                segments.next().unwrap_or_default()
                            } else {
                                part.to_string()
                            }
                        },
                    )
                    .collect();
                let mut uri = path.join("/");
                let query: Vec<String> = query.into_iter().map(|(name, value)| format!("{name}={value}")).collect();
                match raw_query {
                    Some(raw) => uri.push_str(&format!("?{raw}")),
                    None if !query.is_empty() => uri.push_str(&format!("?{}", query.join("&"))),
                    None => {}
                }
                (operation.method, uri)
            })
    })
}

/// Sends `method uri` as the admin, with an empty JSON object as the body of a write.
async fn send(api: &TestApi, method: Method, uri: &str) -> Option<Reply> {
    let mut builder = Request::builder().method(method.clone()).uri(uri);
    let body = if matches!(method, Method::POST | Method::PUT | Method::PATCH) {
        builder = builder.header(header::CONTENT_TYPE, "application/json");
        Body::from("{}")
    } else {
        Body::empty()
    };
    // A URI the HTTP layer would not accept never reaches the router.
    let request = builder.body(body).ok()?;
    Some(api.send(request).await)
}

/// The property: below 500, and an `/api/v2` error in the API's JSON shape.
fn judge(method: &Method, uri: &str, reply: &Reply) -> Result<(), String> {
    if reply.status.is_server_error() {
        return Err(format!("{method} {uri} answered {}: {}", reply.status, reply.text()));
    }
    if uri.starts_with("/api/v2") && reply.status.is_client_error() && reply.status != StatusCode::METHOD_NOT_ALLOWED {
        let json: Value = serde_json::from_slice(&reply.body)
            .map_err(|_| format!("{method} {uri} answered {} without JSON: {}", reply.status, reply.text()))?;
        let detail = gust_webapi::error::detail_text(&json["detail"]);
        if detail.is_none_or(|detail| detail.trim().is_empty()) {
            return Err(format!("{method} {uri} answered {} without a detail: {json}", reply.status));
        }
    }
    Ok(())
}

/// A test API with a DAG, a run of it and its task instances, so known ids reach the handlers' queries.
async fn seeded() -> TestApi {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    api.start_run(ETL_DAG, r#"{"dag_run_id": "r1"}"#).await;
    api
}

#[test]
fn any_path_segment_and_query_string_of_any_operation_gets_an_answer_below_500() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let api = runtime.block_on(seeded());
    const CASES: u32 = 10_000;
    let config = Config { source_file: Some(file!()), ..Config::with_cases(CASES) };
    let mut runner = TestRunner::new(config);
    let (sent, succeeded) = (Cell::new(0u32), Cell::new(0u32));
    let outcome = runner.run(&request(operations()), |(method, uri)| {
        let Some(reply) = runtime.block_on(send(&api, method.clone(), &uri)) else { return Ok(()) };
        sent.set(sent.get() + 1);
        if reply.status.is_success() {
            succeeded.set(succeeded.get() + 1);
        }
        judge(&method, &uri, &reply).map_err(TestCaseError::fail)
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
    // The requests reach the handlers, and known ids get past the lookups to real answers.
    assert!(sent.get() > CASES * 9 / 10, "only {} of {CASES} requests were valid HTTP", sent.get());
    assert!(succeeded.get() > CASES / 20, "only {} of {CASES} requests succeeded", succeeded.get());
}

#[tokio::test]
async fn the_api_corpus_of_odd_requests_gets_answers_below_500() {
    let api = seeded().await;
    let corpus = include_str!("../../corpus/api/requests.txt");
    let mut sent = 0;
    for line in corpus.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#')) {
        let (method, uri) = line.split_once(' ').unwrap_or_else(|| panic!("`METHOD /path` expected: {line}"));
        let method: Method = method.parse().unwrap_or_else(|_| panic!("a method: {line}"));
        let reply = send(&api, method.clone(), uri).await.unwrap_or_else(|| panic!("not a URI: {line}"));
        judge(&method, uri, &reply).unwrap_or_else(|problem| panic!("{problem}"));
        sent += 1;
    }
    assert!(sent >= 20, "only {sent} requests in the corpus");
}
