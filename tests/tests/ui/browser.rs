//! The UI in a real headless Chromium against a running stack (scheduler,
//! worker and webapi over TCP): a user logs in, triggers a DAG through the
//! form with a param, watches the grid turn green without reloading, reads
//! the param in the task's log, clears the task and sees it run again, and
//! signs out; a viewer cannot trigger; forged and cross-site posts are
//! refused. With `GUST_SCREENSHOTS=1` the first test saves the main pages
//! to docs/screenshots/ (CI leaves the committed pictures alone).

use std::path::PathBuf;

use axum::{response::Html, routing::get, Router};
use gust_tests::{browser::Browser, TestStack, ADMIN_PASSWORD, ADMIN_USER};
use serde_json::{json, Value};

const DAG_ID: &str = "ui_greeting";

/// A diamond whose first task prints the `greeting` param; it sleeps first,
/// so the grid is shown before the task ends and must update by itself.
/// `count` fails for the greeting `oops`, so the grid has a red cell too.
const GREETING_DAG: &str = r#"
dag_id: ui_greeting
description: Greets whoever the trigger form names, then fans out and joins.
schedule: null
tags: [ui, example]
default_args: {owner: web-ui}
params:
  greeting: {type: string, default: hello}
tasks:
  - id: greet
    operator: bash
    command: sleep 4; echo "greeting={{ params.greeting }}"
  - id: shout
    operator: bash
    command: echo "{{ params.greeting }}" | tr a-z A-Z
    depends_on: [greet]
  - id: count
    operator: bash
    command: printf %s "{{ params.greeting }}" | wc -c && test "{{ params.greeting }}" != oops
    depends_on: [greet]
  - id: done
    operator: noop
    depends_on: [shout, count]
"#;

/// A DAG file of the repository's examples, so the DAG list looks like a real one.
fn example(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dags").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Saves the window as docs/screenshots/`name`.png when `GUST_SCREENSHOTS=1`.
async fn screenshot(browser: &Browser, name: &str) {
    if std::env::var("GUST_SCREENSHOTS").as_deref() == Ok("1") {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots").join(format!("{name}.png"));
        browser.screenshot(&path).await;
    }
}

/// `value` as a double-quoted CSS string.
fn css_string(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The grid cell of `task_id` in run `run_id`, with `extra` (e.g. `.s-success`) appended to the link's selector.
fn cell(run_id: &str, task_id: &str, extra: &str) -> String {
    format!("td a.cell{extra}[data-run={}][data-task={}]", css_string(run_id), css_string(task_id))
}

/// Signs in through the login form the browser shows.
async fn sign_in(browser: &Browser, username: &str, password: &str) {
    browser.fill("form[action=\"/login\"] input[name=username]", username).await;
    browser.fill("form[action=\"/login\"] input[name=password]", password).await;
    browser.click("form[action=\"/login\"] button[type=submit]").await;
    browser.wait_for("form[action=\"/logout\"] button").await;
}

/// The runs of the DAG, through the API.
async fn runs(stack: &TestStack) -> Vec<Value> {
    let (status, body) = stack.get(&format!("/api/v2/dags/{DAG_ID}/dagRuns")).await;
    assert_eq!(status, 200, "listing runs: {body}");
    body["dag_runs"].as_array().cloned().unwrap_or_default()
}

/// Asserts the browser shows the login page, having been sent there from `from`.
async fn assert_on_login_page(browser: &Browser, from: &str) {
    browser.wait_for("form[action=\"/login\"] input[name=password]").await;
    let path = browser.path().await;
    assert!(path.starts_with("/login"), "{from} should redirect to the login page, the browser is at {path}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn browser_user_logs_in_triggers_with_a_param_watches_the_grid_reads_the_log_and_clears_the_task() {
    let (hello, etl) = (example("example_hello.yaml"), example("example_etl.yaml"));
    let dag_files = [("ui_greeting.yaml", GREETING_DAG), ("example_hello.yaml", &hello), ("example_etl.yaml", &etl)];
    let stack = TestStack::spawn(&dag_files).await;
    stack.wait_for_dag(DAG_ID).await;
    stack.wait_for_dag("example_hello").await;
    // Two earlier runs, one of them failed, so the grid has more than one column.
    let mut failed_run = String::new();
    for (earlier, state) in [("bonjour", "success"), ("oops", "failed")] {
        let run_id = stack.trigger(DAG_ID, json!({"greeting": earlier})).await;
        assert_eq!(stack.wait_for_run(DAG_ID, &run_id).await, state, "the run greeting {earlier}");
        failed_run = run_id;
    }
    let browser = Browser::start(&stack.api).await;
    let greeting = format!("hi-from-chromium-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);

    // No session: the DAG list sends the browser to the login page, which sends it back.
    browser.goto("/dags").await;
    assert_on_login_page(&browser, "/dags").await;
    screenshot(&browser, "login").await;
    sign_in(&browser, ADMIN_USER, ADMIN_PASSWORD).await;
    let dag_link = format!("a.dag-link[href=\"/dags/{DAG_ID}\"]");
    browser.wait_for(&dag_link).await;
    assert_eq!(browser.path().await, "/dags", "after signing in the browser is back where it wanted to go");
    screenshot(&browser, "dags").await;

    // The DAG's grid, its trigger link, and the form generated from its params.
    browser.click(&dag_link).await;
    browser.click(&format!("a#trigger-link[href=\"/dags/{DAG_ID}/trigger\"]")).await;
    let field = "form#trigger-form [name=\"param.greeting\"]";
    browser.wait_for(field).await;
    assert_eq!(browser.attr(field, "value").await.as_deref(), Some("hello"), "the field holds the param's default");
    browser.fill(field, &greeting).await;
    screenshot(&browser, "trigger").await;
    browser.click("button#trigger-submit").await;

    // The run page of the new run, whose conf holds the typed value.
    browser.wait_for("#run-state").await;
    let run_path = browser.path().await;
    assert!(run_path.starts_with(&format!("/dags/{DAG_ID}/runs/")), "the form leads to the run page, not {run_path}");
    let runs = runs(&stack).await;
    let new: Vec<_> = runs.iter().filter(|run| run["conf"]["greeting"] == greeting.as_str()).collect();
    assert_eq!((runs.len(), new.len()), (3, 1), "one run was created, with the param in its conf: {runs:?}");
    let run_id = new[0]["dag_run_id"].as_str().expect("dag_run_id").to_string();

    // The grid, opened while the task still runs, turns green by itself (no reload).
    browser.goto(&format!("/dags/{DAG_ID}")).await;
    let greet_cell = cell(&run_id, "greet", "");
    let first_class = browser.attr(&greet_cell, "class").await.unwrap_or_default();
    assert!(
        !first_class.split_whitespace().any(|c| c == "s-success"),
        "the task finished before the grid was shown ({first_class}), so this run cannot show live updates"
    );
    browser.script("window.gustGridNotReloaded = true", vec![]).await;
    browser.wait_for(&cell(&run_id, "greet", ".s-success")).await;
    browser.wait_for(&cell(&run_id, "done", ".s-success")).await;
    assert!(browser.has(&cell(&failed_run, "count", ".s-failed")).await, "the failed task's cell is red");
    let same_document = browser.script("return window.gustGridNotReloaded === true", vec![]).await;
    assert_eq!(same_document, true, "the grid updated in place, without the page being reloaded");
    browser
        .wait_until("the grid to stop polling once nothing runs", || async {
            (!browser.has("[hx-trigger*=\"every\"]").await).then_some(())
        })
        .await;
    screenshot(&browser, "grid").await;

    for tab in ["graph", "gantt"] {
        browser.click(&format!("nav.tabs a[href^=\"/dags/{DAG_ID}/{tab}\"]")).await;
        browser
            .wait_until(&format!("the {tab} page"), || async { browser.path().await.contains(tab).then_some(()) })
            .await;
        browser.wait_for("nav.tabs").await;
        assert_eq!(browser.status().await, 200, "the {tab} page loads: {}", browser.describe().await);
        screenshot(&browser, tab).await;
    }
    browser.goto(&run_path).await;
    let run_state = browser.text("#run-state").await;
    assert!(run_state.contains("success"), "the run page says the run succeeded, not {run_state:?}");
    screenshot(&browser, "run").await;

    // The task page, reached from the grid cell, shows the param's value in the log.
    browser.goto(&format!("/dags/{DAG_ID}")).await;
    browser.click(&cell(&run_id, "greet", "")).await;
    browser.wait_for_text("#log", &format!("greeting={greeting}")).await;
    let task_path = browser.path().await;
    assert!(browser.text("#ti-state").await.contains("success"), "{}", browser.describe().await);
    assert!(!browser.has("[hx-trigger*=\"every\"]").await, "a finished try's page does not poll");
    screenshot(&browser, "task").await;

    // Clear the task: the preview lists it, confirming resets it, and it runs again as try 2.
    browser.click("a#clear-task-link").await;
    browser.wait_for("ul#clear-preview li").await;
    let preview = browser.text("ul#clear-preview").await;
    assert!(preview.contains("greet"), "the clear preview lists the task: {preview:?}");
    let ti = stack.task_instance(DAG_ID, &run_id, "greet").await;
    assert_eq!((&ti["state"], &ti["try_number"]), (&json!("success"), &json!(1)), "the preview changed nothing");
    browser.click("form#confirm-clear button[type=submit]").await;
    browser
        .wait_until("the clear to be confirmed", || async { (!browser.path().await.ends_with("/clear")).then_some(()) })
        .await;
    assert_eq!(browser.status().await, 200, "confirming the clear: {}", browser.describe().await);
    stack
        .eventually("the cleared task to succeed on its second try", || async {
            let ti = stack.task_instance(DAG_ID, &run_id, "greet").await;
            (ti["state"] == "success" && ti["try_number"] == 2).then_some(())
        })
        .await;
    browser.goto(&task_path).await;
    browser.wait_for("#tries a[href*=\"try=2\"]").await;
    assert!(browser.text("#ti-state").await.contains("success"), "{}", browser.describe().await);
    browser.wait_for_text("#log", &format!("greeting={greeting}")).await;

    // Sign out: the DAG list needs a session again.
    browser.click("form[action=\"/logout\"] button").await;
    assert_on_login_page(&browser, "signing out").await;
    browser.goto("/dags").await;
    assert_on_login_page(&browser, "/dags after signing out").await;

    browser.close().await;
    stack.stop().await;
}

/// Sends a form post from the page's own context with `fetch`; returns its status and body text.
async fn post_from_page(browser: &Browser, path: &str, fields: Value) -> (u64, String) {
    let script = "const [url, fields] = arguments;
        return fetch(url, {method: 'POST', body: new URLSearchParams(fields), redirect: 'manual'})
            .then(async r => [r.type === 'opaqueredirect' ? 303 : r.status, await r.text()]);";
    let reply = browser.script(script, vec![json!(path), fields]).await;
    (reply[0].as_u64().unwrap_or_default(), reply[1].as_str().unwrap_or_default().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn browser_viewer_sees_no_trigger_link_and_a_forged_trigger_post_gets_403() {
    let stack = TestStack::spawn(&[("ui_greeting.yaml", GREETING_DAG)]).await;
    stack.wait_for_dag(DAG_ID).await;
    let (status, body) = stack
        .send(
            reqwest::Method::POST,
            "/api/v2/gust/users",
            &json!({"username": "vera", "password": "vera-password", "role": "viewer"}),
        )
        .await;
    assert_eq!(status, 201, "creating the viewer: {body}");
    let browser = Browser::start(&stack.api).await;

    browser.goto(&format!("/dags/{DAG_ID}")).await;
    assert_on_login_page(&browser, "the grid").await;
    sign_in(&browser, "vera", "vera-password").await;
    browser.wait_for("nav.tabs").await;
    assert_eq!(browser.path().await, format!("/dags/{DAG_ID}"));
    assert!(!browser.has("#trigger-link").await, "a viewer sees no trigger link");
    assert!(!browser.has("#backfill-link").await, "a viewer sees no backfill link");

    // The viewer forges the trigger form's post from the page, with the session's own CSRF token.
    let csrf = browser.attr("form[action=\"/logout\"] input[name=csrf]", "value").await.expect("a CSRF token");
    let fields = json!({"csrf": csrf, "param.greeting": "forged"});
    let (status, text) = post_from_page(&browser, &format!("/dags/{DAG_ID}/trigger"), fields).await;
    assert_eq!(status, 403, "a viewer's trigger post is refused: {text}");
    assert!(runs(&stack).await.is_empty(), "no run was created");

    // The same token is good for what a viewer may do: signing out.
    let (status, text) = post_from_page(&browser, "/logout", json!({"csrf": csrf})).await;
    assert_eq!(status, 303, "the token itself was valid, so the 403 was the role's: {text}");
    browser.goto(&format!("/dags/{DAG_ID}")).await;
    assert_on_login_page(&browser, "the grid after signing out").await;

    browser.close().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn browser_cross_site_form_post_and_a_post_without_the_csrf_token_get_403() {
    let stack = TestStack::spawn(&[("ui_greeting.yaml", GREETING_DAG)]).await;
    stack.wait_for_dag(DAG_ID).await;
    // Another site on the same host (another port): the browser sends the
    // SameSite=Strict cookie to it, so only the Origin and token checks stand.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding the other site");
    let other_site = format!("http://{}", listener.local_addr().expect("its address"));
    let target = format!("{}/dags/{DAG_ID}/trigger", stack.api);
    let page = format!(
        "<!doctype html><title>win a prize</title><form method=post action=\"{target}\">\
         <input type=hidden name=\"param.greeting\" value=forged><button id=forge type=submit>Claim</button></form>"
    );
    let site = Router::new().route("/", get(move || async move { Html(page) }));
    let server = tokio::spawn(async move { axum::serve(listener, site).await });
    let browser = Browser::start(&stack.api).await;

    browser.goto("/login").await;
    sign_in(&browser, ADMIN_USER, ADMIN_PASSWORD).await;
    browser.goto_url(&format!("{other_site}/")).await;
    browser.click("button#forge").await;
    browser
        .wait_until("the forged form to be sent", || async {
            (browser.path().await == format!("/dags/{DAG_ID}/trigger")).then_some(())
        })
        .await;
    assert_eq!(browser.status().await, 403, "a cross-site form post is refused: {}", browser.describe().await);

    // From the server's own page, but without the token: refused too.
    browser.goto("/dags").await;
    let (status, text) =
        post_from_page(&browser, &format!("/dags/{DAG_ID}/trigger"), json!({"param.greeting": "forged"})).await;
    assert_eq!(status, 403, "a post without the CSRF token is refused: {text}");
    assert!(runs(&stack).await.is_empty(), "no run was created");

    server.abort();
    browser.close().await;
    stack.stop().await;
}
