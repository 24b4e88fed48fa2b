//! The run page and the task-instance page: state, conf, task instances,
//! clear with its dry-run preview, mark, tries, rendered fields, XComs and
//! the paged, tailed, downloadable log.

use axum::http::{header, Method, StatusCode};
use chrono::Utc;
use gust_shared::db;
use gust_tests::{
    api::{TestApi, ETL_DAG},
    ui::Page,
};
use gust_webapi::auth::Role;
use uuid::Uuid;

const RUN: &str = "/dags/etl/runs/r1";
const EXTRACT: &str = "/dags/etl/runs/r1/tasks/extract";

/// DAG `etl` with run `r1` (conf `conf`) and its task instances, the run running.
async fn etl_run(api: &TestApi, conf: &str) {
    api.add_dag(ETL_DAG).await;
    api.start_run(ETL_DAG, &format!(r#"{{"dag_run_id": "r1", "conf": {conf}}}"#)).await;
    sql(api, "UPDATE dag_runs SET state = 'running', start_date = now() WHERE run_id = 'r1'").await;
}

async fn sql(api: &TestApi, statement: &str) {
    api.pool.get().await.unwrap().batch_execute(statement).await.unwrap();
}

/// Sets columns of task `task` of run `r1` (`assignments` is SQL).
async fn set_ti(api: &TestApi, task: &str, assignments: &str) {
    sql(api, &format!("UPDATE task_instances SET {assignments} WHERE run_id = 'r1' AND task_id = '{task}'")).await;
}

async fn ti_id(api: &TestApi, task: &str) -> Uuid {
    let client = api.pool.get().await.unwrap();
    db::task_instances::listing::get(&client, "etl", "r1", task, -1).await.unwrap().unwrap().id
}

async fn state_of(api: &TestApi, task: &str) -> String {
    let client = api.pool.get().await.unwrap();
    db::task_instances::listing::get(&client, "etl", "r1", task, -1).await.unwrap().unwrap().state.as_str().to_string()
}

async fn run_state(api: &TestApi) -> String {
    let client = api.pool.get().await.unwrap();
    db::runs::get(&client, "etl", "r1").await.unwrap().unwrap().state.as_str().to_string()
}

/// Appends `lines` stdout lines `line 1` … to try `try_number` of `task`.
async fn append_lines(api: &TestApi, task: &str, try_number: i32, lines: usize) {
    let id = ti_id(api, task).await;
    let client = api.pool.get().await.unwrap();
    let texts: Vec<String> = (1..=lines).map(|n| format!("line {n}")).collect();
    let now = Utc::now();
    let batch: Vec<_> = texts.iter().map(|t| (now, "stdout", t.as_str())).collect();
    db::logs::append(&client, id, try_number, &batch).await.unwrap();
}

fn location(page: &Page) -> String {
    page.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

fn header_of(page: &Page, name: header::HeaderName) -> String {
    page.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

#[tokio::test]
async fn run_page_shows_state_conf_version_and_task_instances_and_polls_only_while_live() {
    let api = TestApi::start().await;
    etl_run(&api, r#"{"region": "eu-west", "quote": "<b>\"hi\"</b>"}"#).await;
    set_ti(&api, "extract", "state = 'success', try_number = 1, start_date = now(), end_date = now()").await;

    let page = api.page(RUN).await.assert_ok();
    assert_eq!(page.texts("#run-state"), ["running"]);
    let conf = page.texts("pre.json").join("\n");
    assert!(conf.contains("eu-west") && conf.contains(r#"<b>\"hi\"</b>"#), "{conf}");
    assert!(!page.body.contains("<b>"), "conf markup is escaped");
    let rows = page.texts("#run-live table tbody tr");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().any(|r| r.contains("extract") && r.contains("success")), "{rows:?}");
    assert!(rows.iter().any(|r| r.contains("load") && r.contains("no status")), "{rows:?}");
    assert!(page.has(&format!(r#"#run-live a[href="{EXTRACT}"]"#)));
    assert!(page.has(r#"a[href="/dags/etl/code?version=1"]"#));
    assert_eq!(page.attrs("#run-live", "hx-trigger"), ["every 3s"]);

    let live = api.page(&format!("{RUN}/live")).await.assert_ok();
    assert_eq!(live.texts("#run-state"), ["running"]);

    sql(&api, "UPDATE dag_runs SET state = 'success', end_date = now() WHERE run_id = 'r1'").await;
    let live = api.page(&format!("{RUN}/live")).await.assert_ok();
    assert_eq!(live.texts("#run-state"), ["success"]);
    assert!(live.attrs("#run-live", "hx-trigger").is_empty(), "a finished run stops polling");
    assert!(api.page(RUN).await.attrs("#run-live", "hx-get").is_empty());
}

#[tokio::test]
async fn unknown_dag_run_task_or_try_is_a_404_page_and_bad_numbers_a_400_page() {
    let api = TestApi::start().await;
    etl_run(&api, "{}").await;
    set_ti(&api, "extract", "state = 'success', try_number = 1").await;
    for missing in [
        "/dags/nope/runs/r1",
        "/dags/etl/runs/nope",
        "/dags/etl/runs/r1/tasks/nope",
        "/dags/etl/runs/r1/tasks/extract?try=2",
        "/dags/etl/runs/r1/tasks/extract?map_index=3",
        "/dags/etl/runs/r1/tasks/load/log?try=1",
        "/dags/etl/runs/r1/tasks/extract/log.txt?try=5",
    ] {
        let page = api.page(missing).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{missing}: {}", page.body);
        assert!(page.has("main.problem p[role=alert]"), "{missing}: an HTML page");
    }
    for bad in [
        "/dags/etl/runs/r1/tasks/extract?try=x",
        "/dags/etl/runs/r1/tasks/extract?try=0",
        "/dags/etl/runs/r1/tasks/extract?map_index=-7",
        "/dags/etl/runs/r1/tasks/extract/log?try=1&after=-1",
        "/dags/etl/runs/r1/tasks/extract/log?try=1&after=99999999999999999999",
        "/dags/etl/runs/r1/tasks/extract/mapped/first",
        "/dags/etl/runs/r1/clear?only_failed=maybe",
    ] {
        let page = api.page(bad).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{bad}: {}", page.body);
    }
}

#[tokio::test]
async fn run_clear_preview_lists_exactly_what_will_be_reset_and_confirming_resets_it() {
    let api = TestApi::start().await;
    etl_run(&api, "{}").await;
    set_ti(&api, "extract", "state = 'success', try_number = 1").await;
    set_ti(&api, "load", "state = 'failed', try_number = 1").await;
    sql(&api, "UPDATE dag_runs SET state = 'failed', end_date = now() WHERE run_id = 'r1'").await;

    let preview = api.page(&format!("{RUN}/clear")).await.assert_ok();
    let listed = preview.texts("ul#clear-preview li");
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed[0].starts_with("extract") || listed[1].starts_with("extract"), "{listed:?}");
    let only_failed = api.page(&format!("{RUN}/clear?only_failed=true")).await.assert_ok();
    let listed = only_failed.texts("ul#clear-preview li");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].starts_with("load") && listed[0].contains("failed"), "{listed:?}");
    assert_eq!(only_failed.attrs(r#"form#confirm-clear input[name=only_failed]"#, "value"), ["true"]);
    assert!(only_failed.has("form#confirm-clear button[type=submit]"));
    assert_eq!(state_of(&api, "load").await, "failed", "a preview changes nothing");

    let done = api.post_form(&api.admin_token, &format!("{RUN}/clear"), &[("only_failed", "true")]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(location(&done), RUN);
    assert_eq!(state_of(&api, "load").await, "none");
    assert_eq!(state_of(&api, "extract").await, "success", "only_failed kept the success");
    assert_eq!(run_state(&api).await, "queued");
}

#[tokio::test]
async fn mark_success_by_form_works_for_an_admin_while_a_viewer_sees_no_buttons_and_gets_403() {
    let api = TestApi::start().await;
    etl_run(&api, "{}").await;
    set_ti(&api, "extract", "state = 'running', try_number = 1").await;
    let viewer = api.token_for(Role::Viewer).await;

    let admin_page = api.page(RUN).await.assert_ok();
    for button in ["a#clear-run-link", "form#mark-run-success", "form#mark-run-failed", "form#delete-run"] {
        assert!(admin_page.has(button), "admin sees {button}");
    }
    let viewer_page = api.page_as(Some(&viewer), RUN).await.assert_ok();
    for button in ["a#clear-run-link", "form#mark-run-success", "form#mark-run-failed", "form#delete-run"] {
        assert!(!viewer_page.has(button), "viewer sees no {button}");
    }
    let viewer_task = api.page_as(Some(&viewer), EXTRACT).await.assert_ok();
    for button in ["a#clear-task-link", "form#mark-task-success", "form#mark-task-failed"] {
        assert!(!viewer_task.has(button), "viewer sees no {button}");
        assert!(api.page(EXTRACT).await.has(button), "admin sees {button}");
    }

    let forged = api.post_form(&viewer, &format!("{RUN}/mark"), &[("state", "success")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    assert!(forged.texts("p.error").join(" ").contains("operator"), "the API's reason is shown");
    let forged = api.post_form(&viewer, &format!("{EXTRACT}/mark"), &[("state", "failed")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    assert_eq!(run_state(&api).await, "running");

    let marked = api.post_form(&api.admin_token, &format!("{RUN}/mark"), &[("state", "success")]).await;
    assert_eq!(marked.status, StatusCode::SEE_OTHER, "{}", marked.body);
    assert_eq!(location(&marked), RUN);
    assert_eq!(run_state(&api).await, "success");
    assert_eq!(state_of(&api, "extract").await, "success");
    assert_eq!(api.page(RUN).await.texts("#run-state"), ["success"]);
}

#[tokio::test]
async fn a_refused_task_mark_shows_the_apis_reason_and_a_good_one_returns_to_the_task() {
    let api = TestApi::start().await;
    etl_run(&api, "{}").await;
    set_ti(&api, "extract", "state = 'failed', try_number = 1").await;

    let marked = api.post_form(&api.admin_token, &format!("{EXTRACT}/mark"), &[("state", "success")]).await;
    assert_eq!(marked.status, StatusCode::SEE_OTHER, "{}", marked.body);
    assert_eq!(location(&marked), EXTRACT);
    assert_eq!(state_of(&api, "extract").await, "success");

    let refused = api.post_form(&api.admin_token, &format!("{EXTRACT}/mark"), &[("state", "running")]).await;
    assert!(refused.status.is_client_error(), "{}", refused.status);
    assert!(!refused.texts("p.error").is_empty(), "{}", refused.body);
    assert!(refused.has("#ti-state"), "the task page again, with the reason");
}

#[tokio::test]
async fn run_delete_goes_back_to_the_dag() {
    let api = TestApi::start().await;
    etl_run(&api, "{}").await;
    sql(&api, "UPDATE dag_runs SET state = 'failed' WHERE run_id = 'r1'").await;
    let deleted = api.post_form(&api.admin_token, &format!("{RUN}/delete"), &[("confirm", "yes")]).await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER, "{}", deleted.body);
    assert_eq!(location(&deleted), "/dags/etl");
    assert_eq!(api.page(RUN).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn task_page_shows_tries_with_worker_exit_code_and_failure_reason() {
    let api = TestApi::start().await;
    etl_run(&api, "{}").await;
    let id = ti_id(&api, "extract").await;
    let client = api.pool.get().await.unwrap();
    client
        .execute(
            r#"
INSERT INTO task_instance_tries (ti_id, try_number, state, hostname, exit_code, failure_reason, start_date, end_date)
VALUES ($1, 1, 'up_for_retry', 'worker-1', 3, 'exit code 3', now() - interval '5 s', now() - interval '4 s')"#,
            &[&id],
        )
        .await
        .unwrap();
    set_ti(
        &api,
        "extract",
        "state = 'running', try_number = 2, hostname = 'worker-2', pid = 4242, start_date = now(), max_tries = 1",
    )
    .await;

    let page = api.page(EXTRACT).await.assert_ok();
    assert_eq!(page.texts("#ti-state"), ["running"]);
    let facts = page.texts("dl.facts").join(" ");
    assert!(facts.contains("bash") && facts.contains("default"), "{facts}");
    let tries = page.texts("#tries tbody tr");
    assert_eq!(tries.len(), 2, "{tries:?}");
    assert_eq!(page.texts("#tries td.exit-code"), ["3", ""]);
    assert_eq!(page.texts("#tries td.failure-reason"), ["exit code 3", ""]);
    assert_eq!(page.texts("#tries td.worker"), ["worker-1", "worker-2"]);
    assert_eq!(page.texts("#tries td.pid"), ["", "4242"]);
    let tabs = page.attrs(".try-tabs a", "href");
    assert_eq!(tabs, [format!("{EXTRACT}?try=1#log"), format!("{EXTRACT}?try=2#log")]);
    assert_eq!(page.attrs(".try-tabs a[aria-current=page]", "href"), [format!("{EXTRACT}?try=2#log")]);
}

#[tokio::test]
async fn log_pages_a_thousand_lines_at_a_time_and_tails_only_while_the_try_runs() {
    let api = TestApi::start().await;
    etl_run(&api, "{}").await;
    set_ti(&api, "extract", "state = 'running', try_number = 1, start_date = now()").await;
    append_lines(&api, "extract", 1, 1500).await;

    let page = api.page(EXTRACT).await.assert_ok();
    let lines = page.texts("#log .line");
    assert_eq!(lines.len(), 1000);
    assert_eq!((lines[0].as_str(), lines[999].as_str()), ("line 1", "line 1000"));
    assert!(!page.has("#log-tail"), "the rest is loaded by hand first");
    let more = page.attrs("#log a#log-more", "hx-get");
    assert_eq!(more.len(), 1, "a load-more link");
    assert!(more[0].starts_with(&format!("{EXTRACT}/log?try=1&after=")), "{}", more[0]);

    let next = api.page(&more[0]).await.assert_ok();
    let lines = next.texts(".line");
    assert_eq!((lines.len(), lines[0].as_str()), (500, "line 1001"));
    assert!(!next.has("#log-more"));
    let tail = next.attrs("#log-tail", "hx-get");
    assert_eq!(tail.len(), 1, "the try runs, so the fragment ends with the live tail");
    assert!(tail[0].contains("tail=1"), "{}", tail[0]);
    assert_eq!(next.attrs("#log-tail", "hx-trigger"), ["every 2s"]);
    assert_eq!(header_of(&next, header::CACHE_CONTROL), "no-store");

    append_lines(&api, "extract", 1, 2).await;
    let tailed = api.page(&tail[0]).await.assert_ok();
    assert_eq!(tailed.texts(".line"), ["line 1", "line 2"], "the tail brings the new lines");
    assert!(tailed.has("#log-tail"));

    set_ti(&api, "extract", "state = 'success', end_date = now()").await;
    let finished = api.page(&tail[0]).await.assert_ok();
    assert_eq!(finished.texts(".line").len(), 2);
    assert!(!finished.has("#log-tail"), "a finished try is not polled");
    assert_eq!(header_of(&finished, header::CACHE_CONTROL), "private, max-age=31536000, immutable");
    let again = api.page(&more[0]).await.assert_ok();
    assert_eq!(header_of(&again, header::CACHE_CONTROL), "private, max-age=31536000, immutable");
    assert!(!again.has("#log-tail"));

    let short = TestApi::start().await;
    etl_run(&short, "{}").await;
    set_ti(&short, "extract", "state = 'running', try_number = 1").await;
    append_lines(&short, "extract", 1, 3).await;
    let running = short.page(EXTRACT).await.assert_ok();
    assert_eq!(running.texts("#log .line").len(), 3);
    assert!(running.has("#log #log-tail") && !running.has("#log-more"));
    set_ti(&short, "extract", "state = 'failed'").await;
    let ended = short.page(EXTRACT).await.assert_ok();
    assert!(!ended.has("#log-tail") && !ended.has("#log-more"));
}

#[tokio::test]
async fn hostile_log_lines_and_xcom_values_arrive_as_text() {
    let api = TestApi::start().await;
    etl_run(&api, "{}").await;
    set_ti(&api, "extract", "state = 'success', try_number = 1").await;
    let id = ti_id(&api, "extract").await;
    let client = api.pool.get().await.unwrap();
    let now = Utc::now();
    let hostile = [
        (now, "stdout", "<script>alert(1)</script>"),
        (now, "stderr", "\u{1b}[1;31mred alert\u{1b}[0m done"),
        (now, "gust", "bell\u{7} \"quoted\" 'single'"),
    ];
    db::logs::append(&client, id, 1, &hostile).await.unwrap();
    let value = serde_json::json!({"html": "<img src=x onerror=alert(2)>", "quote": "\"'"});
    db::xcom::replace(&client, id, 1, &[("return_value", &value)]).await.unwrap();

    let page = api.page(EXTRACT).await.assert_ok();
    assert_eq!(
        page.texts("#log .line"),
        ["<script>alert(1)</script>", "red alert done", "bell\u{2407} \"quoted\" 'single'"]
    );
    assert_eq!(page.attrs("#log .line", "class"), ["line stdout", "line stderr", "line gust"]);
    assert!(!page.body.contains("<script>alert"), "the line is escaped");
    assert!(!page.body.contains('\u{1b}'), "no raw escape reaches the page");
    let xcoms = page.texts("table.xcoms td").join(" ");
    assert!(xcoms.contains("return_value") && xcoms.contains("<img src=x onerror=alert(2)>"), "{xcoms}");
    assert!(!page.body.contains("<img"), "the XCom is escaped");
}

#[tokio::test]
async fn raw_download_is_an_attachment_with_every_line() {
    let api = TestApi::start().await;
    etl_run(&api, "{}").await;
    set_ti(&api, "extract", "state = 'success', try_number = 1").await;
    append_lines(&api, "extract", 1, 12_345).await;

    let page = api.page(EXTRACT).await.assert_ok();
    let href = page.attrs("a#log-download", "href");
    assert_eq!(href, [format!("{EXTRACT}/log.txt?try=1")]);
    let reply = api.get(&href[0]).await;
    assert_eq!(reply.status, StatusCode::OK);
    let content_type = reply.headers.get(header::CONTENT_TYPE).unwrap().to_str().unwrap();
    assert_eq!(content_type, "text/plain; charset=utf-8");
    let disposition = reply.headers.get(header::CONTENT_DISPOSITION).unwrap().to_str().unwrap();
    assert_eq!(disposition, r#"attachment; filename="etl__r1__extract__1.log""#);
    let text = reply.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 12_345);
    assert_eq!((lines[0], lines[12_344]), ("line 1", "line 12345"));
}

#[tokio::test]
async fn raw_download_over_a_real_connection_streams_a_log_of_several_chunks_to_the_end_plain_and_gzipped() {
    // gzip polls a finished body once more than a plain read does; the stream must stay ended.
    let api = TestApi::start().await;
    etl_run(&api, "{}").await;
    set_ti(&api, "extract", "state = 'success', try_number = 1").await;
    append_lines(&api, "extract", 1, 12_345).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = api.router.clone();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let url = format!("http://{address}{EXTRACT}/log.txt?try=1");
    for _ in 0..3 {
        let reply = reqwest::Client::new().get(&url).bearer_auth(&api.admin_token).send().await.unwrap();
        assert_eq!(reply.status(), StatusCode::OK);
        let text = reply.text().await.expect("the whole body arrives");
        assert_eq!(text.lines().count(), 12_345);
        assert!(text.ends_with("line 12345\n"));
        let gzip =
            reqwest::Client::new().get(&url).bearer_auth(&api.admin_token).header(header::ACCEPT_ENCODING, "gzip");
        let reply = gzip.send().await.unwrap();
        assert_eq!(reply.headers().get(header::CONTENT_ENCODING).unwrap(), "gzip");
        let compressed = reply.bytes().await.expect("the whole compressed body arrives");
        assert!(compressed.len() > 1000 && compressed.len() < text.len(), "{} compressed bytes", compressed.len());
    }
    server.abort();
}

#[tokio::test]
async fn task_clear_preview_lists_the_task_and_its_downstream_when_asked_and_confirming_resets_them() {
    let api = TestApi::start().await;
    etl_run(&api, "{}").await;
    set_ti(&api, "extract", "state = 'success', try_number = 1").await;
    set_ti(&api, "load", "state = 'success', try_number = 1").await;

    let alone = api.page(&format!("{EXTRACT}/clear")).await.assert_ok();
    let listed = alone.texts("ul#clear-preview li");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].starts_with("extract"), "{listed:?}");
    let with_downstream = api.page(&format!("{EXTRACT}/clear?include_downstream=true")).await.assert_ok();
    assert_eq!(with_downstream.texts("ul#clear-preview li").len(), 2);
    assert_eq!(with_downstream.attrs("form#confirm-clear input[name=include_downstream]", "value"), ["true"]);

    let cleared = api.post_form(&api.admin_token, &format!("{EXTRACT}/clear"), &[("include_downstream", "true")]).await;
    assert_eq!(cleared.status, StatusCode::SEE_OTHER, "{}", cleared.body);
    assert_eq!(location(&cleared), EXTRACT);
    assert_eq!(state_of(&api, "extract").await, "none");
    assert_eq!(state_of(&api, "load").await, "none");
}

#[tokio::test]
async fn a_mapped_task_without_map_index_lists_its_instances_and_each_has_its_page() {
    let api = TestApi::start().await;
    etl_run(&api, "{}").await;
    sql(
        &api,
        r#"
UPDATE task_instances SET map_index = 0, state = 'success', try_number = 1 WHERE run_id = 'r1' AND task_id = 'extract';
INSERT INTO task_instances (run_pk, dag_id, run_id, task_id, map_index, operator, queue, state, try_number)
SELECT run_pk, dag_id, run_id, task_id, 1, operator, queue, 'failed', 1 FROM task_instances
WHERE run_id = 'r1' AND task_id = 'extract';"#,
    )
    .await;

    let list = api.page(EXTRACT).await.assert_ok();
    assert_eq!(list.attrs("a.map-index", "href"), [format!("{EXTRACT}?map_index=0"), format!("{EXTRACT}?map_index=1")]);
    assert_eq!(list.texts("table.mapped .badge"), ["success", "failed"]);
    let redirect = api.get(&format!("{EXTRACT}/mapped/1")).await;
    assert_eq!(redirect.status, StatusCode::SEE_OTHER);
    assert_eq!(redirect.headers.get(header::LOCATION).unwrap(), &format!("{EXTRACT}?map_index=1"));
    let one = api.page(&format!("{EXTRACT}?map_index=1")).await.assert_ok();
    assert_eq!(one.texts("#ti-state"), ["failed"]);
    assert_eq!(one.attrs("form#mark-task-success input[name=map_index]", "value"), ["1"]);
}

#[tokio::test]
async fn rendered_fields_show_with_secret_variables_masked() {
    let api = TestApi::start().await;
    etl_run(&api, "{}").await;
    set_ti(
        &api,
        "extract",
        r#"state = 'success', try_number = 1, rendered_fields = '{"command": "curl -u bob:hunter2-secret https://x"}'"#,
    )
    .await;
    let created =
        api.send_json(Method::POST, "/api/v2/variables", r#"{"key": "api_password", "value": "hunter2-secret"}"#).await;
    assert!(created.status.is_success(), "{}", created.text());

    let page = api.page(EXTRACT).await.assert_ok();
    let rendered = page.texts("table.rendered").join(" ");
    assert!(rendered.contains("command") && rendered.contains("curl -u bob:*** https://x"), "{rendered}");
    assert!(!page.body.contains("hunter2-secret"));
}
