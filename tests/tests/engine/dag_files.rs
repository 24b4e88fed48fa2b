//! DAG files pushed over the API (`/api/v2/gust/dagFiles`): validated before
//! they are stored, picked up by the scheduler without a restart on a stack
//! whose DAG folder is empty, versioned, refused when the folder defines the
//! same `dag_id`, and retired when deleted.

use std::time::Duration;

use gust_tests::{StackOptions, TestStack};
use serde_json::{json, Value};

/// `PUT`s `yaml` as `file_name`; returns the status and the JSON body.
async fn push(stack: &TestStack, file_name: &str, yaml: &str) -> (u16, Value) {
    push_as(stack, file_name, yaml, "application/yaml").await
}

/// `PUT`s `yaml` as `file_name` with the given `Content-Type`.
async fn push_as(stack: &TestStack, file_name: &str, yaml: &str, content_type: &str) -> (u16, Value) {
    let response = stack
        .http
        .put(format!("{}/api/v2/gust/dagFiles/{file_name}", stack.api))
        .header("content-type", content_type)
        .body(yaml.to_string())
        .send()
        .await
        .expect("PUT a DAG file");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dag_pushed_over_the_api_runs_on_a_stack_whose_dag_folder_is_empty() {
    let stack = TestStack::spawn(&[]).await;
    let broken = "dag_id: pushed\ntasks:\n  - {id: a, operator: nope!}\n";
    let (status, body) = push(&stack, "pushed.yaml", broken).await;
    assert_eq!(status, 422, "{body}");
    let detail = gust_webapi::error::detail_text(&body["detail"]).unwrap_or_default();
    assert!(detail.contains("dagFiles:pushed.yaml"), "{body}");
    assert_eq!(stack.get("/api/v2/gust/dagFiles/pushed.yaml").await.0, 404, "nothing stored");

    let yaml = "dag_id: pushed\ntasks:\n  - {id: greet, operator: bash, command: 'echo pushed v1'}\n";
    let (status, body) = push(&stack, "pushed.yaml", yaml).await;
    assert_eq!((status, body["version"].as_i64(), body["dag_id"].as_str()), (201, Some(1), Some("pushed")), "{body}");
    let run_id = stack.trigger("pushed", json!({})).await;
    assert_eq!(stack.wait_for_run("pushed", &run_id).await, "success");
    assert!(stack.log_text("pushed", &run_id, "greet", 1).await.contains("pushed v1"));
    let (_, dag) = stack.get("/api/v2/dags/pushed").await;
    assert_eq!(dag["fileloc"], "dagFiles:pushed.yaml", "{dag}");

    let (status, body) = push(&stack, "pushed.yaml", yaml).await;
    assert_eq!((status, body["version"].as_i64()), (200, Some(1)), "the same text is no new version: {body}");
    let changed = format!("description: v2\n{}", yaml.replace("pushed v1", "pushed v2"));
    let (status, body) = push(&stack, "pushed.yaml", &changed).await;
    assert_eq!((status, body["version"].as_i64()), (200, Some(2)), "{body}");
    stack
        .eventually("the scheduler to store the pushed change", || async {
            let (_, dag) = stack.get("/api/v2/dags/pushed").await;
            (dag["description"] == "v2").then_some(())
        })
        .await;
    let run_id = stack.trigger("pushed", json!({})).await;
    assert_eq!(stack.wait_for_run("pushed", &run_id).await, "success");
    assert!(stack.log_text("pushed", &run_id, "greet", 1).await.contains("pushed v2"), "the new version runs");
    let response = stack.http.get(format!("{}/api/v2/gust/dagFiles/pushed.yaml", stack.api)).send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), changed);

    let (status, body) = stack.send(reqwest::Method::DELETE, "/api/v2/gust/dagFiles/pushed.yaml", &json!(null)).await;
    assert_eq!(status, 204, "{body}");
    stack
        .eventually("the deleted file's DAG to be retired", || async {
            let (_, dag) = stack.get("/api/v2/dags/pushed").await;
            (dag["is_stale"] == true).then_some(())
        })
        .await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pushed_file_that_defines_a_dag_of_the_folder_is_an_import_error_and_the_folder_wins() {
    let folder_dag = "dag_id: shared\ntasks:\n  - {id: a, operator: bash, command: 'echo from the folder'}\n";
    let stack = TestStack::spawn(&[("shared.yaml", folder_dag)]).await;
    stack.wait_for_dag("shared").await;
    let pushed = "dag_id: shared\ntasks:\n  - {id: a, operator: bash, command: 'echo from the API'}\n";
    assert_eq!(push(&stack, "shared.yaml", pushed).await.0, 201);
    let error = stack
        .eventually("an import error for the pushed file", || async {
            let (_, errors) = stack.get("/api/v2/importErrors").await;
            errors["import_errors"]
                .as_array()
                .and_then(|all| all.iter().find(|e| e["filename"] == "dagFiles:shared.yaml").cloned())
        })
        .await;
    assert!(error["stack_trace"].as_str().unwrap_or_default().contains("already defined"), "{error}");
    let run_id = stack.trigger("shared", json!({})).await;
    assert_eq!(stack.wait_for_run("shared", &run_id).await, "success");
    assert!(stack.log_text("shared", &run_id, "a", 1).await.contains("from the folder"));
    let (status, _) =
        stack.send(reqwest::Method::PUT, "/api/v2/gust/dagFiles/..%2Fescape.yaml", &json!("dag_id: x")).await;
    assert_eq!(status, 400, "a file name is a plain name");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_push_wakes_a_scheduler_whose_periodic_rescan_is_an_hour_away() {
    let options = StackOptions { rescan_interval: Some(Duration::from_secs(3600)), ..StackOptions::default() };
    let stack = TestStack::spawn_with(&[], options).await;
    // Let the scheduler finish its start-up scan, so only the push's NOTIFY can show it the file.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let yaml = "dag_id: woken\ntasks:\n  - {id: greet, operator: bash, command: 'echo woken'}\n";
    assert_eq!(push(&stack, "woken.yaml", yaml).await.0, 201);
    stack.wait_for_dag("woken").await;
    let run_id = stack.trigger("woken", json!({})).await;
    assert_eq!(stack.wait_for_run("woken", &run_id).await, "success");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_push_says_what_the_import_error_of_the_same_file_in_the_folder_says() {
    let broken = "dag_id: twin\ntasks:\n  - {id: a, operator: noop, depends_on: [ghost]}\n";
    let stack = TestStack::spawn(&[("twin.yaml", broken)]).await;
    let error = stack
        .eventually("the folder file's import error", || async {
            let (_, errors) = stack.get("/api/v2/importErrors").await;
            errors["import_errors"].as_array().and_then(|all| all.first().cloned())
        })
        .await;
    let (status, body) = push(&stack, "twin.yaml", broken).await;
    assert_eq!(status, 422, "{body}");
    let folder_file = error["filename"].as_str().unwrap();
    let expected = error["stack_trace"].as_str().unwrap().replace(folder_file, "dagFiles:twin.yaml");
    assert_eq!(gust_webapi::error::detail_text(&body["detail"]), Some(expected), "{body} / {error}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pushed_files_come_as_yaml_or_plain_text_and_are_listed_with_their_dag_and_version() {
    let stack = TestStack::spawn(&[]).await;
    let yaml = "dag_id: plain\ntasks:\n  - {id: a, operator: noop}\n";
    assert_eq!(push_as(&stack, "plain.yaml", yaml, "text/plain; charset=utf-8").await.0, 201);
    let (status, body) = push_as(&stack, "other.yaml", yaml, "application/json").await;
    assert_eq!(status, 415, "{body}");
    assert!(body["detail"].as_str().unwrap_or_default().contains("application/yaml or text/plain"), "{body}");
    assert_eq!(push(&stack, "plain.yaml", &format!("description: again\n{yaml}")).await.0, 200);

    let (status, list) = stack.get("/api/v2/gust/dagFiles").await;
    assert_eq!((status, &list["total_entries"]), (200, &json!(1)), "the refused file was not stored: {list}");
    let file = &list["dag_files"][0];
    assert_eq!(
        (&file["file_name"], &file["fileloc"], &file["dag_id"], &file["version"], &file["updated_by"]),
        (
            &json!("plain.yaml"),
            &json!("dagFiles:plain.yaml"),
            &json!("plain"),
            &json!(2),
            &json!(gust_tests::ADMIN_USER)
        ),
        "{list}"
    );
    stack.stop().await;
}
