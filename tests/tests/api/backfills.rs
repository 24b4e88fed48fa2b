//! Backfills through the API (Airflow 3's `/api/v2/backfills`): creating
//! one queues a `backfill` run per covered data interval, `dry_run` previews
//! them, reprocess behaviours decide about existing runs, pause/unpause/cancel
//! change a backfill, and every client mistake is a 4xx naming the problem.
//! Runs against the real PostgreSQL on 127.0.0.1:5432; no scheduler runs, so
//! runs stay where the API put them.

use axum::http::{Method, StatusCode};
use gust_shared::db;
use gust_tests::api::{Reply, TestApi};
use serde_json::{json, Value};

/// Daily since 2025-01-01, two tasks, a typed param.
const DAILY_DAG: &str = r#"
dag_id: daily
schedule: "@daily"
start_date: 2025-01-01
params:
  region: {type: string, default: eu}
tasks:
  - id: extract
    operator: bash
    command: echo extract
  - id: load
    operator: noop
    depends_on: [extract]
"#;

const MANUAL_DAG: &str = "dag_id: manual\nstart_date: 2025-01-01\ntasks:\n  - {id: a, operator: noop}\n";

const HOURLY_DAG: &str =
    "dag_id: hourly\nschedule: '@hourly'\nstart_date: 2020-01-01\ntasks:\n  - {id: a, operator: noop}\n";

fn jan(day: u32) -> String {
    format!("2025-01-{day:02}T00:00:00Z")
}

fn jan_rfc3339(day: u32) -> String {
    format!("2025-01-{day:02}T00:00:00+00:00")
}

async fn api_with(dags: &[&str]) -> TestApi {
    let api = TestApi::start().await;
    for dag in dags {
        api.add_dag(dag).await;
    }
    api
}

fn ok(reply: Reply) -> Value {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()
}

async fn post(api: &TestApi, path: &str, body: Value) -> Reply {
    api.send_json(Method::POST, path, &body.to_string()).await
}

async fn put(api: &TestApi, path: &str) -> Reply {
    api.send_json(Method::PUT, path, "").await
}

/// `(run_id, run_type, state, backfill_id)` of the DAG's runs, by logical date.
async fn runs(api: &TestApi, dag_id: &str) -> Vec<(String, String, String, Option<i64>)> {
    let client = api.pool.get().await.unwrap();
    let (mut rows, _) = db::runs::list(&client, dag_id, 10_000, 0).await.unwrap();
    rows.sort_by_key(|r| r.logical_date);
    rows.into_iter().map(|r| (r.run_id, r.run_type, r.state.as_str().to_string(), r.backfill_id)).collect()
}

/// The logical dates of a dry run's answer.
fn dry_dates(reply: Reply) -> Vec<String> {
    let body = ok(reply);
    let dates: Vec<String> =
        body["backfills"].as_array().unwrap().iter().map(|b| b["logical_date"].as_str().unwrap().to_string()).collect();
    assert_eq!(body["total_entries"], dates.len(), "{body}");
    dates
}

/// Triggers a manual run of `daily` at logical date 2025-01-`day` and sets its state (and task states).
async fn existing_run(api: &TestApi, day: u32, state: &str) {
    let run_id = format!("existing_{day}");
    let body = json!({"dag_run_id": run_id, "logical_date": jan(day)});
    let (_, run_pk) = api.start_run(DAILY_DAG, &body.to_string()).await;
    let client = api.pool.get().await.unwrap();
    let ti_state = if state == "failed" { "failed" } else { "success" };
    client
        .execute(
            "UPDATE task_instances SET state = $2, try_number = 1, end_date = now() WHERE run_pk = $1",
            &[&run_pk, &ti_state],
        )
        .await
        .unwrap();
    client
        .execute(
            "UPDATE dag_runs SET state = $2, start_date = now(), end_date = now() WHERE id = $1",
            &[&run_pk, &state],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn creating_a_backfill_queues_one_backfill_run_per_day_and_answers_airflows_shape() {
    let api = api_with(&[DAILY_DAG]).await;
    let body = json!({"dag_id": "daily", "from_date": jan(3), "to_date": jan(7), "max_active_runs": 2,
                      "dag_run_conf": {"region": "us"}});
    let backfill = ok(post(&api, "/api/v2/backfills", body).await);
    for field in ["id", "created_at", "updated_at"] {
        assert!(!backfill[field].is_null(), "{field} in {backfill}");
    }
    assert_eq!(backfill["dag_id"], "daily");
    assert_eq!(backfill["dag_display_name"], "daily");
    assert_eq!(backfill["from_date"], "2025-01-03T00:00:00Z");
    assert_eq!(backfill["to_date"], "2025-01-07T00:00:00Z");
    assert_eq!(backfill["dag_run_conf"], json!({"region": "us"}));
    assert_eq!(backfill["is_paused"], false);
    assert_eq!(backfill["reprocess_behavior"], "none");
    assert_eq!(backfill["max_active_runs"], 2);
    assert_eq!(backfill["completed_at"], Value::Null);

    let id = backfill["id"].as_i64().unwrap();
    let expected: Vec<_> = (3..=7)
        .map(|d| (format!("backfill__{}", jan_rfc3339(d)), "backfill".into(), "queued".into(), Some(id)))
        .collect();
    assert_eq!(runs(&api, "daily").await, expected);

    let run = ok(api.get(&format!("/api/v2/dags/daily/dagRuns/backfill__{}", jan_rfc3339(4))).await);
    assert_eq!(run["run_type"], "backfill");
    assert_eq!(run["triggered_by"], "backfill");
    assert_eq!(run["state"], "queued");
    assert_eq!(run["conf"], json!({"region": "us"}));
    assert_eq!(run["logical_date"], "2025-01-04T00:00:00Z");
    assert_eq!(run["data_interval_end"], "2025-01-05T00:00:00Z");

    assert_eq!(ok(api.get(&format!("/api/v2/backfills/{id}")).await), backfill);
    let list = ok(api.get("/api/v2/backfills?dag_id=daily").await);
    assert_eq!(list["total_entries"], 1);
    assert_eq!(list["backfills"][0], backfill);
    assert_eq!(ok(api.get("/api/v2/backfills?dag_id=other").await), json!({"backfills": [], "total_entries": 0}));
}

#[tokio::test]
async fn dry_run_lists_exactly_the_logical_dates_it_would_run_in_start_order() {
    let api = api_with(&[DAILY_DAG]).await;
    let body = |extra: Value| {
        let mut body = json!({"dag_id": "daily", "from_date": "2025-01-02T12:00:00Z", "to_date": jan(6)});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let forward: Vec<String> = (3..=6).map(jan).collect();
    assert_eq!(dry_dates(post(&api, "/api/v2/backfills/dry_run", body(json!({}))).await), forward);
    let backwards = dry_dates(post(&api, "/api/v2/backfills/dry_run", body(json!({"run_backwards": true}))).await);
    assert_eq!(backwards, forward.iter().rev().cloned().collect::<Vec<_>>());

    existing_run(&api, 4, "success").await;
    existing_run(&api, 5, "failed").await;
    let with = |behavior: &str| body(json!({"reprocess_behavior": behavior}));
    assert_eq!(dry_dates(post(&api, "/api/v2/backfills/dry_run", with("none")).await), [jan(3), jan(6)]);
    assert_eq!(dry_dates(post(&api, "/api/v2/backfills/dry_run", with("failed")).await), [jan(3), jan(5), jan(6)]);
    assert_eq!(dry_dates(post(&api, "/api/v2/backfills/dry_run", with("completed")).await), forward);
    assert_eq!(runs(&api, "daily").await.len(), 2, "a dry run creates nothing");
    assert_eq!(ok(api.get("/api/v2/backfills?dag_id=daily").await)["total_entries"], 0);
}

#[tokio::test]
async fn reprocess_none_leaves_existing_runs_alone() {
    let api = api_with(&[DAILY_DAG]).await;
    existing_run(&api, 2, "failed").await;
    let body = json!({"dag_id": "daily", "from_date": jan(1), "to_date": jan(3)});
    let id = ok(post(&api, "/api/v2/backfills", body).await)["id"].as_i64().unwrap();
    let runs = runs(&api, "daily").await;
    assert_eq!(runs[1], ("existing_2".into(), "manual".into(), "failed".into(), None));
    assert_eq!(runs.iter().filter(|r| r.3 == Some(id)).count(), 2);
}

#[tokio::test]
async fn reprocess_failed_clears_a_failed_run_and_queues_it_again_as_a_backfill_run() {
    let api = api_with(&[DAILY_DAG]).await;
    existing_run(&api, 2, "failed").await;
    existing_run(&api, 3, "success").await;
    let body = json!({"dag_id": "daily", "from_date": jan(2), "to_date": jan(3), "reprocess_behavior": "failed"});
    let id = ok(post(&api, "/api/v2/backfills", body).await)["id"].as_i64().unwrap();
    assert_eq!(
        runs(&api, "daily").await,
        [
            ("existing_2".into(), "backfill".into(), "queued".into(), Some(id)),
            ("existing_3".into(), "manual".into(), "success".into(), None),
        ]
    );
    let tis = ok(api.get("/api/v2/dags/daily/dagRuns/existing_2/taskInstances").await);
    let states: Vec<&Value> = tis["task_instances"].as_array().unwrap().iter().map(|ti| &ti["state"]).collect();
    assert_eq!(states, [&Value::Null, &Value::Null], "every task instance is cleared: {tis}");
    let run = ok(api.get("/api/v2/dags/daily/dagRuns/existing_2").await);
    assert_eq!((&run["run_type"], &run["triggered_by"]), (&json!("backfill"), &json!("backfill")));
}

#[tokio::test]
async fn reprocess_completed_reruns_successful_and_failed_runs() {
    let api = api_with(&[DAILY_DAG]).await;
    existing_run(&api, 2, "failed").await;
    existing_run(&api, 3, "success").await;
    let body = json!({"dag_id": "daily", "from_date": jan(2), "to_date": jan(3), "reprocess_behavior": "completed"});
    let id = ok(post(&api, "/api/v2/backfills", body).await)["id"].as_i64().unwrap();
    let runs = runs(&api, "daily").await;
    assert!(runs.iter().all(|r| r.2 == "queued" && r.3 == Some(id)), "{runs:?}");
}

#[tokio::test]
async fn a_backfill_with_nothing_to_run_is_completed_at_once() {
    let api = api_with(&[DAILY_DAG]).await;
    existing_run(&api, 2, "success").await;
    let body = json!({"dag_id": "daily", "from_date": jan(2), "to_date": jan(2)});
    let backfill = ok(post(&api, "/api/v2/backfills", body).await);
    assert!(backfill["completed_at"].is_string(), "{backfill}");
    let again = json!({"dag_id": "daily", "from_date": jan(3), "to_date": jan(3)});
    ok(post(&api, "/api/v2/backfills", again).await);
}

#[tokio::test]
async fn a_second_active_backfill_of_the_same_dag_is_a_conflict() {
    let api = api_with(&[DAILY_DAG]).await;
    let first =
        ok(post(&api, "/api/v2/backfills", json!({"dag_id": "daily", "from_date": jan(1), "to_date": jan(2)})).await);
    let second =
        post(&api, "/api/v2/backfills", json!({"dag_id": "daily", "from_date": jan(5), "to_date": jan(6)})).await;
    let detail = second.assert_error(StatusCode::CONFLICT);
    assert!(detail.contains(&format!("id {}", first["id"])) && detail.contains("`daily`"), "{detail}");
    assert_eq!(runs(&api, "daily").await.len(), 2, "the refused backfill created no run");
}

#[tokio::test]
async fn invalid_backfill_requests_are_4xx_naming_the_problem() {
    let api = api_with(&[DAILY_DAG, MANUAL_DAG, HOURLY_DAG]).await;
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            json!({"dag_id": "daily", "from_date": jan(5), "to_date": jan(1)}),
            StatusCode::BAD_REQUEST,
            "must not be after",
        ),
        (json!({"dag_id": "ghost", "from_date": jan(1), "to_date": jan(2)}), StatusCode::NOT_FOUND, "`ghost`"),
        (json!({"dag_id": "manual", "from_date": jan(1), "to_date": jan(2)}), StatusCode::BAD_REQUEST, "no schedule"),
        (
            json!({"dag_id": "daily", "from_date": "2999-01-01T00:00:00Z", "to_date": "2999-01-02T00:00:00Z"}),
            StatusCode::BAD_REQUEST,
            "in the future",
        ),
        (
            json!({"dag_id": "hourly", "from_date": "2023-01-01T00:00:00Z", "to_date": "2024-12-31T00:00:00Z"}),
            StatusCode::BAD_REQUEST,
            "more than 10000 data intervals",
        ),
        (
            json!({"dag_id": "daily", "from_date": "2024-01-01T00:00:00Z", "to_date": "2024-02-01T00:00:00Z"}),
            StatusCode::BAD_REQUEST,
            "no ended data interval",
        ),
        (
            json!({"dag_id": "daily", "from_date": jan(1), "to_date": jan(2), "dag_run_conf": {"region": 3}}),
            StatusCode::BAD_REQUEST,
            "param `region` must be a string",
        ),
        (
            json!({"dag_id": "daily", "from_date": jan(1), "to_date": jan(2), "max_active_runs": 0}),
            StatusCode::BAD_REQUEST,
            "max_active_runs",
        ),
        (
            json!({"dag_id": "daily", "from_date": jan(1), "to_date": jan(2), "reprocess_behavior": "all"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "reprocess_behavior",
        ),
        (json!({"dag_id": "daily", "from_date": jan(1)}), StatusCode::UNPROCESSABLE_ENTITY, "to_date"),
    ];
    for (body, status, needle) in cases {
        for path in ["/api/v2/backfills", "/api/v2/backfills/dry_run"] {
            let reply = post(&api, path, body.clone()).await;
            if path.ends_with("dry_run") && needle == "no ended data interval" {
                assert_eq!(dry_dates(reply), Vec::<String>::new(), "a dry run of an empty range lists nothing");
                continue;
            }
            let detail = reply.assert_error(status);
            assert!(detail.contains(needle), "{path} {body}: {detail}");
        }
    }
    for dag_id in ["daily", "manual", "hourly"] {
        assert_eq!(runs(&api, dag_id).await, [], "no refused request created a run of {dag_id}");
    }
    let detail = api.get("/api/v2/backfills").await.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(detail.contains("dag_id"), "{detail}");
    api.get("/api/v2/backfills/999").await.assert_error(StatusCode::NOT_FOUND);
    api.get("/api/v2/backfills/abc").await.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    for action in ["pause", "unpause", "cancel"] {
        put(&api, &format!("/api/v2/backfills/999/{action}")).await.assert_error(StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn pause_and_unpause_flip_is_paused_of_an_active_backfill() {
    let api = api_with(&[DAILY_DAG]).await;
    let id =
        ok(post(&api, "/api/v2/backfills", json!({"dag_id": "daily", "from_date": jan(1), "to_date": jan(3)})).await)
            ["id"]
            .as_i64()
            .unwrap();
    assert_eq!(ok(put(&api, &format!("/api/v2/backfills/{id}/pause")).await)["is_paused"], true);
    assert_eq!(ok(api.get(&format!("/api/v2/backfills/{id}")).await)["is_paused"], true);
    assert_eq!(ok(put(&api, &format!("/api/v2/backfills/{id}/unpause")).await)["is_paused"], false);
}

#[tokio::test]
async fn cancel_fails_the_queued_runs_and_completes_the_backfill() {
    let api = api_with(&[DAILY_DAG]).await;
    let body = json!({"dag_id": "daily", "from_date": jan(1), "to_date": jan(3)});
    let id = ok(post(&api, "/api/v2/backfills", body).await)["id"].as_i64().unwrap();
    let client = api.pool.get().await.unwrap();
    client
        .execute(
            "UPDATE dag_runs SET state = 'running', start_date = now() WHERE run_id = $1",
            &[&format!("backfill__{}", jan_rfc3339(1))],
        )
        .await
        .unwrap();

    let cancelled = ok(put(&api, &format!("/api/v2/backfills/{id}/cancel")).await);
    assert!(cancelled["completed_at"].is_string(), "{cancelled}");
    assert_eq!(cancelled["is_paused"], true);
    let states: Vec<String> = runs(&api, "daily").await.into_iter().map(|r| r.2).collect();
    assert_eq!(states, ["running", "failed", "failed"], "the running run goes on; queued ones are failed");

    for action in ["pause", "unpause", "cancel"] {
        let detail = put(&api, &format!("/api/v2/backfills/{id}/{action}")).await.assert_error(StatusCode::CONFLICT);
        assert!(detail.contains("already completed"), "{detail}");
    }
    let next = json!({"dag_id": "daily", "from_date": jan(5), "to_date": jan(6)});
    ok(post(&api, "/api/v2/backfills", next).await);
}
