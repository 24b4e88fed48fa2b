//! DAG runs and XComs in Airflow 3.3's shapes beyond one run at a time:
//! listing runs by a JSON body, changing and deleting runs in bulk, clearing
//! several runs (and partitions) at once, waiting for a run to finish, and
//! writing XComs by hand. Runs against the real PostgreSQL on 127.0.0.1:5432;
//! rows are arranged with plain SQL.

use axum::http::{Method, StatusCode};
use gust_tests::api::{Reply, TestApi, ETL_DAG};
use gust_webapi::auth::Role;
use serde_json::{json, Value};

/// A second DAG, `other`, with one task.
const OTHER_DAG: &str = r#"
dag_id: other
start_date: 2026-01-01
tasks:
  - id: only
    operator: noop
"#;

const XCOMS: &str = "/api/v2/dags/etl/dagRuns/r1/taskInstances/extract/xcomEntries";

fn ok(reply: Reply) -> Value {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()
}

/// Triggers run `run_id` of the DAG `yaml` and creates its task instances.
async fn trigger(api: &TestApi, run_id: &str, yaml: &str) {
    api.start_run(yaml, &json!({"dag_run_id": run_id}).to_string()).await;
}

/// Runs `UPDATE {table} SET {set} WHERE run_id = $1 [AND task_id = $2]`.
async fn set(api: &TestApi, table: &str, set: &str, run_id: &str, task_id: Option<&str>) {
    let client = api.pool.get().await.unwrap();
    let changed = match task_id {
        None => client.execute(&format!("UPDATE {table} SET {set} WHERE run_id = $1"), &[&run_id]).await,
        Some(task) => {
            let sql = format!("UPDATE {table} SET {set} WHERE run_id = $1 AND task_id = $2");
            client.execute(&sql, &[&run_id, &task]).await
        }
    };
    assert!(changed.unwrap() >= 1, "{table} {run_id}: {set}");
}

/// Runs `r1` and `r2` of `etl` and `r3` of `other`, all failed with every task instance failed.
async fn failed_runs(api: &TestApi) {
    api.add_dag(ETL_DAG).await;
    api.add_dag(OTHER_DAG).await;
    trigger(api, "r1", ETL_DAG).await;
    trigger(api, "r2", ETL_DAG).await;
    trigger(api, "r3", OTHER_DAG).await;
    for run in ["r1", "r2", "r3"] {
        set(api, "task_instances", "state = 'failed', try_number = 1, end_date = now()", run, None).await;
        set(api, "dag_runs", "state = 'failed', start_date = now(), end_date = now()", run, None).await;
    }
}

/// `dag_id.dag_run_id` of each run of a collection, in its order.
fn run_keys(collection: &Value) -> Vec<String> {
    collection["dag_runs"]
        .as_array()
        .unwrap_or_else(|| panic!("no dag_runs in {collection}"))
        .iter()
        .map(|run| format!("{}.{}", run["dag_id"].as_str().unwrap(), run["dag_run_id"].as_str().unwrap()))
        .collect()
}

async fn run_state(api: &TestApi, dag_id: &str, run_id: &str) -> Value {
    ok(api.get(&format!("/api/v2/dags/{dag_id}/dagRuns/{run_id}")).await)["state"].clone()
}

#[tokio::test]
async fn every_run_answers_null_partition_fields_and_a_trigger_refuses_a_partition_key() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    let run = ok(api.send_json(Method::POST, "/api/v2/dags/etl/dagRuns", r#"{"logical_date": null}"#).await);
    assert!(run.get("partition_key").is_some_and(Value::is_null), "{run}");
    assert!(run.get("partition_date").is_some_and(Value::is_null), "{run}");
    let listed = ok(api.get("/api/v2/dags/~/dagRuns").await);
    assert!(listed["dag_runs"][0].get("partition_key").is_some_and(Value::is_null), "{listed}");
    let partitioned = ok(api.get("/api/v2/dags/~/dagRuns?partition_key_pattern=e&partition_date_gte=2000-01-01").await);
    assert_eq!(partitioned["total_entries"], 0, "no gust run has a partition: {partitioned}");
    let by_admin = ok(api.get("/api/v2/dags/~/dagRuns?triggering_user_name_pattern=ADM").await);
    assert_eq!(by_admin["total_entries"], 1, "{by_admin}");

    let keyed = api
        .send_json(Method::POST, "/api/v2/dags/etl/dagRuns", r#"{"logical_date": null, "partition_key": "eu"}"#)
        .await;
    assert!(keyed.assert_error(StatusCode::BAD_REQUEST).contains("not a partitioned DAG"));
    let null_key = r#"{"logical_date": null, "partition_key": null, "dag_run_id": "k"}"#;
    ok(api.send_json(Method::POST, "/api/v2/dags/etl/dagRuns", null_key).await);
}

#[tokio::test]
async fn a_trigger_takes_a_past_run_after_and_refuses_a_future_one() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    let body = r#"{"logical_date": null, "run_after": "2026-02-03T04:05:06Z"}"#;
    let run = ok(api.send_json(Method::POST, "/api/v2/dags/etl/dagRuns", body).await);
    assert_eq!(run["run_after"], "2026-02-03T04:05:06Z");
    let later = r#"{"logical_date": null, "run_after": "2999-01-01T00:00:00Z"}"#;
    let refused = api.send_json(Method::POST, "/api/v2/dags/etl/dagRuns", later).await;
    assert!(refused.assert_error(StatusCode::BAD_REQUEST).contains("`run_after`"));
}

#[tokio::test]
async fn runs_are_listed_by_a_json_body_across_dags_for_viewers_too() {
    let api = TestApi::start().await;
    failed_runs(&api).await;
    set(&api, "dag_runs", "state = 'success', conf = '{\"region\": \"eu\"}'", "r2", None).await;
    let viewer = api.token_for(Role::Viewer).await;
    let list = |body: Value| {
        let (api, viewer) = (&api, &viewer);
        async move {
            let body = body.to_string();
            api.send_as(Some(viewer), Method::POST, "/api/v2/dags/~/dagRuns/list", Some(&body)).await
        }
    };
    let all = ok(list(json!({})).await);
    assert_eq!(run_keys(&all), ["other.r3", "etl.r2", "etl.r1"]);
    assert_eq!(all["total_entries"], 3);
    let etl = ok(list(json!({"dag_ids": ["etl"], "order_by": "run_id"})).await);
    assert_eq!(run_keys(&etl), ["etl.r1", "etl.r2"]);
    let failed = ok(list(json!({"states": ["failed"], "page_limit": 1, "page_offset": 1})).await);
    assert_eq!((run_keys(&failed), failed["total_entries"].clone()), (vec!["etl.r1".to_string()], json!(2)));
    let eu = ok(list(json!({"conf_contains": "\"eu\""})).await);
    assert_eq!(run_keys(&eu), ["etl.r2"]);
    let ended = ok(list(json!({"duration_gte": 0, "end_date_lte": "2999-01-01T00:00:00Z"})).await);
    assert_eq!(ended["total_entries"], 3);

    let named = api.send_json(Method::POST, "/api/v2/dags/etl/dagRuns/list", "{}").await;
    assert!(named.assert_error(StatusCode::UNPROCESSABLE_ENTITY).contains("dag_ids"));
    let unknown = list(json!({"states": ["done"]})).await.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unknown.contains("`done`"), "{unknown}");
    let order = list(json!({"order_by": "colour"})).await.assert_error(StatusCode::BAD_REQUEST);
    assert!(order.contains("colour"), "{order}");
    list(json!({"dag_id": "etl"})).await.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn runs_are_marked_and_noted_in_bulk_and_missing_ones_fail_the_action_unless_skipped() {
    let api = TestApi::start().await;
    failed_runs(&api).await;
    let body = json!({"actions": [{"action": "update", "entities": [
        {"dag_run_id": "r1", "state": "success", "note": "fixed by hand"},
        {"dag_run_id": "r2", "note": "looked at"},
    ]}]});
    let answer = ok(api.send_json(Method::PATCH, "/api/v2/dags/etl/dagRuns", &body.to_string()).await);
    assert_eq!(answer["update"], json!({"success": ["etl.r1", "etl.r2"], "errors": []}), "{answer}");
    assert!(answer["create"].is_null() && answer["delete"].is_null(), "{answer}");
    let r1 = ok(api.get("/api/v2/dags/etl/dagRuns/r1").await);
    assert_eq!((r1["state"].clone(), r1["note"].clone()), (json!("success"), json!("fixed by hand")));
    let tis = api.task_states("/api/v2/dags/etl/dagRuns/r1/taskInstances").await;
    assert!(tis.values().all(|state| state == "success"), "marking the run marks its task instances: {tis:?}");
    assert_eq!(run_state(&api, "etl", "r2").await, "failed", "a note alone keeps the state");

    let missing = json!({"actions": [{"action": "update", "entities": [
        {"dag_run_id": "r2", "state": "queued"}, {"dag_run_id": "nope", "state": "queued"},
    ]}]});
    let answer = ok(api.send_json(Method::PATCH, "/api/v2/dags/etl/dagRuns", &missing.to_string()).await);
    assert_eq!(answer["update"]["success"], json!([]), "{answer}");
    assert_eq!(answer["update"]["errors"][0]["status_code"], 404, "{answer}");
    assert!(answer["update"]["errors"][0]["error"].as_str().unwrap().contains("etl.nope"), "{answer}");
    assert_eq!(run_state(&api, "etl", "r2").await, "failed", "a failed action changes nothing");

    let mut skipping = missing.clone();
    skipping["actions"][0]["action_on_non_existence"] = json!("skip");
    let answer = ok(api.send_json(Method::PATCH, "/api/v2/dags/etl/dagRuns", &skipping.to_string()).await);
    assert_eq!(answer["update"]["success"], json!(["etl.r2"]), "{answer}");
    assert_eq!(run_state(&api, "etl", "r2").await, "queued");

    let across = json!({"actions": [
        {"action": "update", "entities": [{"dag_run_id": "r3", "dag_id": "other", "state": "success"}, {"dag_run_id": "r1"}]},
        {"action": "create", "entities": [{"dag_run_id": "new"}]},
    ]});
    let answer = ok(api.send_json(Method::PATCH, "/api/v2/dags/~/dagRuns", &across.to_string()).await);
    assert_eq!(answer["update"]["success"], json!(["other.r3"]), "{answer}");
    assert_eq!(answer["update"]["errors"][0]["status_code"], 400, "an entity without its DAG under ~: {answer}");
    assert_eq!(answer["create"]["errors"][0]["status_code"], 405, "{answer}");
    assert_eq!(run_state(&api, "other", "r3").await, "success");
}

#[tokio::test]
async fn runs_are_deleted_in_bulk_by_admins_but_not_while_a_task_runs() {
    let api = TestApi::start().await;
    failed_runs(&api).await;
    set(&api, "task_instances", "state = 'running'", "r2", Some("extract")).await;
    let body = json!({"actions": [{"action": "delete", "entities": ["r1", {"dag_run_id": "r2"}]}]}).to_string();
    let operator = api.token_for(Role::Operator).await;
    let refused = ok(api.send_as(Some(&operator), Method::PATCH, "/api/v2/dags/etl/dagRuns", Some(&body)).await);
    assert_eq!(refused["delete"]["errors"][0]["status_code"], 403, "{refused}");
    let viewer = api.token_for(Role::Viewer).await;
    let reply = api.send_as(Some(&viewer), Method::PATCH, "/api/v2/dags/etl/dagRuns", Some(&body)).await;
    reply.assert_error(StatusCode::FORBIDDEN);

    let answer = ok(api.send_json(Method::PATCH, "/api/v2/dags/etl/dagRuns", &body).await);
    assert_eq!(answer["delete"]["success"], json!(["etl.r1"]), "{answer}");
    assert_eq!(answer["delete"]["errors"][0]["status_code"], 409, "{answer}");
    api.get("/api/v2/dags/etl/dagRuns/r1").await.assert_error(StatusCode::NOT_FOUND);
    assert_eq!(run_state(&api, "etl", "r2").await, "failed");
}

#[tokio::test]
async fn several_runs_are_cleared_at_once_after_a_dry_run_lists_what_it_resets() {
    let api = TestApi::start().await;
    failed_runs(&api).await;
    let runs = json!({"dag_runs": [{"dag_run_id": "r1"}, {"dag_run_id": "r2", "dag_id": "etl"}]});
    let dry = ok(api.send_json(Method::POST, "/api/v2/dags/etl/clearDagRuns", &runs.to_string()).await);
    assert_eq!(dry["total_entries"], 4, "two task instances of each run: {dry}");
    let listed: Vec<String> = dry["task_instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ti| format!("{}.{}", ti["dag_run_id"].as_str().unwrap(), ti["task_id"].as_str().unwrap()))
        .collect();
    assert_eq!(listed.len(), 4, "{listed:?}");
    assert!(listed.contains(&"r2.load".to_string()), "{listed:?}");
    assert_eq!(run_state(&api, "etl", "r1").await, "failed", "a dry run changes nothing");

    let mut real = runs.clone();
    real["dry_run"] = json!(false);
    real["note"] = json!("rerun");
    let cleared = ok(api.send_json(Method::POST, "/api/v2/dags/etl/clearDagRuns", &real.to_string()).await);
    assert_eq!(run_keys(&cleared), ["etl.r1", "etl.r2"]);
    assert_eq!(cleared["dag_runs"][0]["state"], "queued", "{cleared}");
    assert_eq!(cleared["dag_runs"][1]["note"], "rerun", "{cleared}");
    let tis = api.task_states("/api/v2/dags/etl/dagRuns/r2/taskInstances").await;
    assert!(tis.values().all(Value::is_null), "cleared task instances have no state: {tis:?}");
    assert_eq!(run_state(&api, "other", "r3").await, "failed", "runs not named stay as they were");

    let across = json!({"dry_run": false, "dag_runs": [{"dag_run_id": "r3", "dag_id": "other"}, {"dag_run_id": "gone", "dag_id": "other"}]});
    let missing = api.send_json(Method::POST, "/api/v2/dags/~/clearDagRuns", &across.to_string()).await;
    assert!(missing.assert_error(StatusCode::NOT_FOUND).contains("gone"));
    assert_eq!(run_state(&api, "other", "r3").await, "failed", "a missing run clears none");
    let no_dag = json!({"dag_runs": [{"dag_run_id": "r3"}]}).to_string();
    let no_dag = api.send_json(Method::POST, "/api/v2/dags/~/clearDagRuns", &no_dag).await;
    assert!(no_dag.assert_error(StatusCode::BAD_REQUEST).contains("dag_id"));
    let neither = api.send_json(Method::POST, "/api/v2/dags/etl/clearDagRuns", "{}").await;
    assert!(neither.assert_error(StatusCode::UNPROCESSABLE_ENTITY).contains("exactly one of"));
    let both = json!({"dag_runs": [{"dag_run_id": "r1"}], "partition_key": "eu"}).to_string();
    api.send_json(Method::POST, "/api/v2/dags/etl/clearDagRuns", &both)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn no_gust_run_has_a_partition_so_partition_selectors_clear_nothing() {
    let api = TestApi::start().await;
    failed_runs(&api).await;
    let by_key = json!({"partition_key": "2026-01-01", "dry_run": false}).to_string();
    let cleared = ok(api.send_json(Method::POST, "/api/v2/dags/etl/clearDagRuns", &by_key).await);
    assert_eq!(cleared, json!({"dag_runs": [], "total_entries": 0}));
    let window = json!({"partition_date_start": "2000-01-01T00:00:00Z"}).to_string();
    let dry = ok(api.send_json(Method::POST, "/api/v2/dags/etl/clearDagRuns", &window).await);
    assert_eq!(dry, json!({"task_instances": [], "total_entries": 0}));
    let tilde = api.send_json(Method::POST, "/api/v2/dags/~/clearDagRuns", &by_key).await;
    assert!(tilde.assert_error(StatusCode::BAD_REQUEST).contains("`~`"));
    let unknown = api.send_json(Method::POST, "/api/v2/dags/nope/clearDagRuns", &by_key).await;
    unknown.assert_error(StatusCode::NOT_FOUND);

    let partitions = "/api/v2/dags/etl/clearPartitions";
    let by_key = ok(api.send_json(Method::POST, partitions, r#"{"partition_key": "eu", "dry_run": false}"#).await);
    assert_eq!(by_key, json!({"dag_runs_cleared": 0, "task_instances_cleared": 0, "dry_run": false}));
    let by_run = r#"{"run_id": "r1", "clear_task_instances": true}"#;
    let counted = ok(api.send_json(Method::POST, partitions, by_run).await);
    assert_eq!(counted, json!({"dag_runs_cleared": 0, "task_instances_cleared": 2, "dry_run": true}));
    assert_eq!(run_state(&api, "etl", "r1").await, "failed", "a dry run changes nothing");
    let by_run = r#"{"run_id": "r1", "clear_task_instances": true, "dry_run": false}"#;
    let done = ok(api.send_json(Method::POST, partitions, by_run).await);
    assert_eq!(done["task_instances_cleared"], 2, "{done}");
    assert_eq!(run_state(&api, "etl", "r1").await, "queued");
    let fields_only = ok(api.send_json(Method::POST, partitions, r#"{"run_id": "r2", "dry_run": false}"#).await);
    assert_eq!(fields_only["dag_runs_cleared"], 0, "r2 has no partition fields to reset: {fields_only}");
    assert_eq!(run_state(&api, "etl", "r2").await, "failed");

    let two = api.send_json(Method::POST, partitions, r#"{"run_id": "r1", "partition_key": "eu"}"#).await;
    assert!(two.assert_error(StatusCode::UNPROCESSABLE_ENTITY).contains("exactly one of run_id"));
    let backwards = r#"{"partition_date_start": "2026-02-01T00:00:00Z", "partition_date_end": "2026-01-01T00:00:00Z"}"#;
    api.send_json(Method::POST, partitions, backwards).await.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    let viewer = api.token_for(Role::Viewer).await;
    let reply = api.send_as(Some(&viewer), Method::POST, partitions, Some(r#"{"run_id": "r1"}"#)).await;
    reply.assert_error(StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn operators_create_change_and_delete_xcoms_that_templates_read_like_a_tasks_own() {
    let api = TestApi::start().await;
    failed_runs(&api).await;
    let operator = api.token_for(Role::Operator).await;
    let viewer = api.token_for(Role::Viewer).await;
    let body = json!({"key": "rows", "value": {"count": 3}}).to_string();
    let refused = api.send_as(Some(&viewer), Method::POST, XCOMS, Some(&body)).await;
    refused.assert_error(StatusCode::FORBIDDEN);

    let created = api.send_as(Some(&operator), Method::POST, XCOMS, Some(&body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let entry = created.json();
    assert_eq!((entry["key"].clone(), entry["value"].clone()), (json!("rows"), json!({"count": 3})));
    assert_eq!((entry["map_index"].clone(), entry["task_id"].clone()), (json!(-1), json!("extract")));
    let run = ok(api.get("/api/v2/dags/etl/dagRuns/r1").await);
    assert_eq!(entry["run_after"], run["run_after"], "{entry}");
    let again = api.send_as(Some(&operator), Method::POST, XCOMS, Some(&body)).await;
    assert!(again.assert_error(StatusCode::CONFLICT).contains("rows"));

    let listed = ok(api.get(XCOMS).await);
    assert_eq!(listed["total_entries"], 1);
    assert!(!listed["xcom_entries"][0]["run_after"].is_null(), "{listed}");

    let client = api.pool.get().await.unwrap();
    let run_pk: i64 = client.query_one("SELECT id FROM dag_runs WHERE run_id = 'r1'", &[]).await.unwrap().get(0);
    let pulled = gust_shared::db::xcom::for_run(&client, run_pk).await.unwrap();
    assert_eq!(pulled["extract"]["rows"], json!({"count": 3}), "ti.xcom_pull sees it");

    let one = format!("{XCOMS}/rows");
    let changed = api.send_as(Some(&operator), Method::PATCH, &one, Some(r#"{"value": [1, 2]}"#)).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text());
    assert_eq!(ok(api.get(&one).await)["value"], json!([1, 2]));
    let unknown = api.send_as(Some(&operator), Method::PATCH, &format!("{XCOMS}/nope"), Some(r#"{"value": 1}"#)).await;
    assert!(unknown.assert_error(StatusCode::NOT_FOUND).contains("nope"));
    let mapped = api.send_as(Some(&operator), Method::PATCH, &one, Some(r#"{"value": 1, "map_index": 4}"#)).await;
    assert!(mapped.assert_error(StatusCode::NOT_FOUND).contains("map_index 4"));
    let extra = api.send_as(Some(&operator), Method::PATCH, &one, Some(r#"{"value": 1, "colour": 4}"#)).await;
    extra.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    let no_key = api.send_as(Some(&operator), Method::POST, XCOMS, Some(r#"{"key": "", "value": 1}"#)).await;
    no_key.assert_error(StatusCode::BAD_REQUEST);

    let deleted = api.send_as(Some(&operator), Method::DELETE, &format!("{one}?map_index=-1"), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text());
    api.get(&one).await.assert_error(StatusCode::NOT_FOUND);
    let twice = api.send_as(Some(&operator), Method::DELETE, &one, None).await;
    twice.assert_error(StatusCode::NOT_FOUND);
}

/// The NDJSON lines of a wait answer, parsed.
fn lines(reply: &Reply) -> Vec<Value> {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let content_type = reply.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert_eq!(content_type, "application/x-ndjson");
    let text = reply.text();
    assert!(text.ends_with('\n'), "{text:?}");
    text.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))).collect()
}

#[tokio::test]
async fn waiting_for_a_run_streams_its_state_until_it_finishes_then_the_results_asked_for() {
    let api = TestApi::start().await;
    failed_runs(&api).await;
    let client = api.pool.get().await.unwrap();
    client
        .execute(
            "INSERT INTO xcom (ti_id, key, value, try_number) \
             SELECT id, 'return_value', '42', 1 FROM task_instances WHERE run_id = 'r1' AND task_id = 'extract'",
            &[],
        )
        .await
        .unwrap();
    set(&api, "dag_runs", "state = 'running', end_date = NULL", "r1", None).await;

    let finish = {
        let pool = api.pool.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(350)).await;
            let client = pool.get().await.unwrap();
            client.execute("UPDATE dag_runs SET state = 'success' WHERE run_id = 'r1'", &[]).await.unwrap();
        })
    };
    let waited = lines(&api.get("/api/v2/dags/etl/dagRuns/r1/wait?interval=0.1&result=extract&result=load").await);
    finish.await.unwrap();
    assert!(waited.len() >= 2, "{waited:?}");
    assert_eq!(waited[0], json!({"state": "running"}));
    assert_eq!(waited.last().unwrap(), &json!({"state": "success", "results": {"extract": 42}}));

    let finished = lines(&api.get("/api/v2/dags/etl/dagRuns/r2/wait?interval=5").await);
    assert_eq!(finished, [json!({"state": "failed"})], "a finished run answers at once, without results unasked");

    let missing = api.get("/api/v2/dags/etl/dagRuns/nope/wait?interval=1").await;
    missing.assert_error(StatusCode::NOT_FOUND);
    let no_interval = api.get("/api/v2/dags/etl/dagRuns/r1/wait").await;
    assert!(no_interval.assert_error(StatusCode::UNPROCESSABLE_ENTITY).contains("query.interval"));
    let zero = api.get("/api/v2/dags/etl/dagRuns/r1/wait?interval=0").await;
    assert!(zero.assert_error(StatusCode::UNPROCESSABLE_ENTITY).contains("[greater_than]"));
}
