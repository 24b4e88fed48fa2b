//! The trigger and backfill forms, and the admin pages: pools, variables,
//! import errors, dead letters and users. Every write is checked through the
//! API afterwards, so a test fails when the form did not really do it.

use axum::http::{header, Method, StatusCode};
use gust_shared::db;
use gust_tests::{api::TestApi, ui::Page};
use gust_webapi::auth::Role;
use serde_json::{json, Value};

const PARAMS_DAG: &str = r#"
dag_id: params_demo
schedule: null
start_date: 2026-01-01
params:
  env: {type: string, enum: [dev, prod], description: where it runs}
  count: {type: integer, default: 3, minimum: 1, maximum: 10, title: How many}
  dry: {type: boolean, default: true}
  ratio: {type: number, default: 0.5}
  label: {type: string, default: nightly}
  items: {type: array, default: [a, b]}
tasks:
  - id: only
    operator: noop
"#;

const BACKFILL_DAG: &str = r#"
dag_id: daily
schedule: "@daily"
start_date: 2026-01-01
params:
  env: {type: string, enum: [dev, prod], default: dev}
tasks:
  - id: only
    operator: noop
"#;

const TRIGGER: &str = "/dags/params_demo/trigger";

/// The `Location` of a redirect, after asserting it is a 303.
#[track_caller]
fn see_other(page: &Page) -> String {
    assert_eq!(page.status, StatusCode::SEE_OTHER, "body: {}", page.body);
    page.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).expect("a Location header").to_string()
}

/// The JSON the API answers `GET path` with, as the admin.
async fn api_json(api: &TestApi, path: &str) -> Value {
    let reply = api.get(path).await;
    assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text());
    reply.json()
}

async fn run_count(api: &TestApi, dag_id: &str) -> i64 {
    api_json(api, &format!("/api/v2/dags/{dag_id}/dagRuns")).await["total_entries"].as_i64().unwrap()
}

/// The one alert of a page (the refusal shown above a form).
fn alert(page: &Page) -> String {
    page.texts("main [role=alert]").join(" ")
}

#[tokio::test]
async fn trigger_form_has_one_field_per_param_of_its_type_with_defaults_and_required_marks() {
    let api = TestApi::start().await;
    api.add_dag(PARAMS_DAG).await;
    let page = api.page(TRIGGER).await.assert_ok();

    assert_eq!(page.attrs("form#trigger-form", "action"), vec![TRIGGER]);
    let mut names = page.attrs("#trigger-form [name^='param.']", "name");
    names.sort();
    assert_eq!(names, ["param.count", "param.dry", "param.env", "param.items", "param.label", "param.ratio"]);

    assert_eq!(page.attrs("select[name='param.env'] option", "value"), ["", "dev", "prod"]);
    assert!(page.has("select[name='param.env'][required]"), "env has no default, so it is required");
    assert!(page.texts("label[data-param=env]")[0].contains("where it runs"), "the description is the help text");

    assert_eq!(page.attrs("input[type=number][name='param.count']", "value"), ["3"]);
    assert_eq!(page.attrs("input[name='param.count']", "min"), ["1"]);
    assert_eq!(page.attrs("input[name='param.count']", "max"), ["10"]);
    assert_eq!(page.attrs("input[name='param.count']", "step"), ["1"]);
    assert!(!page.has("input[name='param.count'][required]"), "a param with a default is optional");
    assert!(page.texts("label[data-param=count]")[0].starts_with("How many"), "the title is the label");

    assert!(page.has("input[type=checkbox][name='param.dry'][checked]"), "the default true is checked");
    assert!(page.has("input[type=hidden][name='checkbox.dry']"));
    assert_eq!(page.attrs("input[type=number][name='param.ratio']", "step"), ["any"]);
    assert_eq!(page.attrs("input[type=number][name='param.ratio']", "value"), ["0.5"]);
    assert_eq!(page.attrs("input[type=text][name='param.label']", "value"), ["nightly"]);
    let items: Value = serde_json::from_str(&page.texts("textarea[name='param.items']")[0]).unwrap();
    assert_eq!(items, json!(["a", "b"]));

    for field in
        ["input[name=run_id]", "input[type=datetime-local][name=logical_date]", "[name=note]", "textarea[name=conf]"]
    {
        assert!(page.has(field), "{field}");
    }
    assert!(page.has("#trigger-form button#trigger-submit"));
    assert_eq!(api.page("/dags/nope/trigger").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn submitting_the_trigger_form_creates_a_run_whose_conf_holds_the_typed_values() {
    let api = TestApi::start().await;
    api.add_dag(PARAMS_DAG).await;
    let page = api
        .post_form(
            &api.admin_token,
            TRIGGER,
            &[
                ("param.env", "prod"),
                ("param.count", "7"),
                ("checkbox.dry", "1"),
                ("param.ratio", "0.25"),
                ("param.label", "from the form"),
                ("param.items", "[1, \"two\"]"),
                ("run_id", "ui_run_1"),
                ("logical_date", "2026-02-03T04:05"),
                ("note", "started by hand"),
                ("conf", r#"{"extra": {"k": "v"}}"#),
            ],
        )
        .await;
    assert_eq!(see_other(&page), "/dags/params_demo/runs/ui_run_1");

    let run = api_json(&api, "/api/v2/dags/params_demo/dagRuns/ui_run_1").await;
    assert_eq!(
        run["conf"],
        json!({"env": "prod", "count": 7, "dry": false, "ratio": 0.25, "label": "from the form", "items": [1, "two"],
               "extra": {"k": "v"}}),
        "an unchecked box is false, numbers are numbers"
    );
    assert_eq!(run["logical_date"], "2026-02-03T04:05:00Z", "the logical date is read as UTC");
    assert_eq!(run["note"], "started by hand");
}

#[tokio::test]
async fn a_value_the_params_refuse_rerenders_the_form_with_the_apis_message_and_creates_no_run() {
    let api = TestApi::start().await;
    api.add_dag(PARAMS_DAG).await;

    let page = api.post_form(&api.admin_token, TRIGGER, &[("param.env", "prod"), ("param.count", "50")]).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(alert(&page).contains("param `count` must be at most 10, got the number 50"), "{}", alert(&page));
    assert_eq!(page.attrs("input[name='param.count']", "value"), ["50"], "what the user typed stays");
    assert_eq!(page.attrs("select[name='param.env'] option[selected]", "value"), ["prod"]);

    let page = api.post_form(&api.admin_token, TRIGGER, &[("param.count", "3")]).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(alert(&page).contains("param `env` is required"), "{}", alert(&page));

    let page = api.post_form(&api.admin_token, TRIGGER, &[("param.env", "dev"), ("param.count", "many")]).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(alert(&page).contains("param `count`") && alert(&page).contains("many"), "{}", alert(&page));

    assert_eq!(run_count(&api, "params_demo").await, 0);
}

#[tokio::test]
async fn a_viewer_sees_no_trigger_button_and_a_forged_trigger_gets_403_and_creates_nothing() {
    let api = TestApi::start().await;
    api.add_dag(PARAMS_DAG).await;
    let viewer = api.token_for(Role::Viewer).await;

    let page = api.page_as(Some(&viewer), TRIGGER).await.assert_ok();
    assert!(page.has("#trigger-not-allowed"), "a notice says the role cannot trigger");
    assert!(!page.has("button#trigger-submit") && !page.has("#trigger-form button[type=submit]"));

    let page = api.post_form(&viewer, TRIGGER, &[("param.env", "dev")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(alert(&page).contains("needs the operator role"), "the API's detail: {}", alert(&page));
    assert_eq!(run_count(&api, "params_demo").await, 0);

    let page = api.page_as(Some(&viewer), "/dags/params_demo/backfill").await.assert_ok();
    assert!(page.has("#backfill-not-allowed") && !page.has("#backfill-form button"));
}

#[tokio::test]
async fn backfill_preview_lists_the_logical_dates_and_create_makes_their_runs() {
    let api = TestApi::start().await;
    api.add_dag(BACKFILL_DAG).await;
    let path = "/dags/daily/backfill";
    let form = |action, conf| {
        [
            ("from_date", "2026-01-02T00:00"),
            ("to_date", "2026-01-04T00:00"),
            ("reprocess_behavior", "none"),
            ("max_active_runs", "2"),
            ("dag_run_conf", conf),
            ("action", action),
        ]
    };
    assert!(api.page(path).await.assert_ok().has("form#backfill-form button#backfill-preview-button"));

    let page = api.post_form(&api.admin_token, path, &form("preview", r#"{"env": "prod"}"#)).await.assert_ok();
    assert_eq!(
        page.texts("ul#backfill-preview li"),
        ["2026-01-02 00:00:00 UTC", "2026-01-03 00:00:00 UTC", "2026-01-04 00:00:00 UTC"]
    );
    assert_eq!(page.attrs("input[name=from_date]", "value"), ["2026-01-02T00:00"], "the form keeps its values");
    assert_eq!(run_count(&api, "daily").await, 0, "a preview creates nothing");

    let refused = api.post_form(&api.admin_token, path, &form("preview", r#"{"env": "staging"}"#)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(alert(&refused).contains("param `env` must be one of"), "{}", alert(&refused));

    let page = api.post_form(&api.admin_token, path, &form("create", r#"{"env": "prod"}"#)).await;
    assert_eq!(see_other(&page), "/dags/daily/runs");
    let runs = api_json(&api, "/api/v2/dags/daily/dagRuns").await;
    assert_eq!(runs["total_entries"], 3);
    assert!(runs["dag_runs"].as_array().unwrap().iter().all(|run| run["conf"] == json!({"env": "prod"})));
}

#[tokio::test]
async fn pools_are_created_changed_and_deleted_from_the_pools_page() {
    let api = TestApi::start().await;
    let admin = &api.admin_token;
    let created = api.post_form(admin, "/pools", &[("name", "gpu"), ("slots", "2"), ("description", "GPUs")]).await;
    assert_eq!(see_other(&created), "/pools");
    let page = api.page("/pools").await.assert_ok();
    assert_eq!(page.texts("tr[data-pool=gpu] td.slots"), ["2"]);
    assert_eq!(page.texts("tr[data-pool=gpu] td.description"), ["GPUs"]);

    let edit = api.page("/pools?edit=gpu").await.assert_ok();
    assert_eq!(edit.attrs("#pool-form input[name=slots]", "value"), ["2"]);
    assert!(edit.has("#pool-form input[name=name][readonly][value=gpu]"));

    let changed = api
        .post_form(
            admin,
            "/pools",
            &[("name", "gpu"), ("slots", "5"), ("description", "GPUs"), ("include_deferred", "true")],
        )
        .await;
    assert_eq!(see_other(&changed), "/pools");
    let pool = api_json(&api, "/api/v2/pools/gpu").await;
    assert_eq!((pool["slots"].as_i64(), pool["include_deferred"].as_bool()), (Some(5), Some(true)));

    let default_pool = api
        .post_form(admin, "/pools", &[("name", "default_pool"), ("slots", "64"), ("description", "Default pool")])
        .await;
    assert_eq!(see_other(&default_pool), "/pools", "default_pool's slots change without touching its description");
    assert_eq!(api_json(&api, "/api/v2/pools/default_pool").await["slots"], 64);

    let refused = api.post_form(admin, "/pools/default_pool/delete", &[]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(alert(&refused).contains("`default_pool` cannot be deleted"), "{}", alert(&refused));
    let refused = api.post_form(admin, "/pools", &[("name", "bad name"), ("slots", "1")]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(alert(&refused).contains("pool name `bad name`"), "{}", alert(&refused));

    assert_eq!(see_other(&api.post_form(admin, "/pools/gpu/delete", &[]).await), "/pools");
    assert_eq!(api.get("/api/v2/pools/gpu").await.status, StatusCode::NOT_FOUND);

    let operator = api.token_for(Role::Operator).await;
    let page = api.page_as(Some(&operator), "/pools").await.assert_ok();
    assert!(page.has("tr[data-pool=default_pool]") && !page.has("#pool-form") && !page.has("form.delete"));
}

#[tokio::test]
async fn secret_variable_values_stay_masked_in_the_list_the_search_and_the_edit_form() {
    let api = TestApi::start().await;
    let secret = "hunter2-very-secret";
    for (key, value) in [
        ("db_password", secret),
        ("bucket", "s3://data"),
        ("conn", r#"{"api_key": "hunter2-very-secret", "user": "u"}"#),
    ] {
        let body = json!({"key": key, "value": value}).to_string();
        assert_eq!(api.send_json(Method::POST, "/api/v2/variables", &body).await.status, StatusCode::CREATED);
    }

    let page = api.page("/variables").await.assert_ok();
    assert!(!page.body.contains(secret), "the secret value is nowhere in the page");
    assert_eq!(page.texts("tr[data-key=db_password] td.value"), ["***"]);
    assert_eq!(page.texts("tr[data-key=bucket] td.value"), ["s3://data"]);
    assert!(page.texts("tr[data-key=conn] td.value")[0].contains(r#""api_key":"***""#));

    let edit = api.page("/variables?edit=db_password").await.assert_ok();
    assert!(!edit.body.contains(secret), "nor in the edit form");
    assert!(edit.has("#variable-form input[name=key][value=db_password][readonly]"));
    assert!(!api.page("/variables?edit=conn").await.assert_ok().body.contains(secret));
    assert_eq!(api.page("/variables?edit=bucket").await.texts("#variable-form textarea[name=value]"), ["s3://data"]);

    let saved = api
        .post_form(&api.admin_token, "/variables", &[("key", "db_password"), ("value", ""), ("description", "main db")])
        .await;
    assert_eq!(see_other(&saved), "/variables");
    let client = api.pool.get().await.unwrap();
    let stored = db::variables::get(&client, "db_password").await.unwrap().unwrap();
    assert_eq!(
        (stored.value.as_str(), stored.description.as_deref()),
        (secret, Some("main db")),
        "an empty value keeps it"
    );

    let created = api.post_form(&api.admin_token, "/variables", &[("key", "region"), ("value", "eu-west")]).await;
    assert_eq!(see_other(&created), "/variables");
    assert_eq!(api.page("/variables?q=REG").await.texts("td.key"), ["region"], "search by key, any case");
    assert_eq!(see_other(&api.post_form(&api.admin_token, "/variables/region/delete", &[]).await), "/variables");
    assert!(db::variables::get(&client, "region").await.unwrap().is_none());

    let viewer = api.token_for(Role::Viewer).await;
    let page = api.page_as(Some(&viewer), "/variables").await.assert_ok();
    assert!(!page.body.contains(secret) && !page.has("#variable-form"));
}

#[tokio::test]
async fn import_errors_and_dead_letters_show_hostile_text_as_text() {
    let api = TestApi::start().await;
    let client = api.pool.get().await.unwrap();
    let filename = "dags/<script>alert(1)</script>.yaml";
    let problem = "line 2: \"quoted\" <img src=x onerror=alert(2)> \u{1b}[31mred\u{1b}[0m\nline 3: 'more'";
    db::import_errors::record(&client, filename, problem).await.unwrap();
    let letter = db::dead_letters::DeadLetter {
        queue: "gust.tasks".into(),
        routing_key: "tasks.default".into(),
        reason: "malformed".into(),
        detail: "<b>not</b> a task message".into(),
        body: r#"{"payload": "<script>alert(3)</script>"}"#.into(),
        ..Default::default()
    };
    db::dead_letters::insert(&client, &letter).await.unwrap();

    let page = api.page("/import-errors").await.assert_ok();
    assert_eq!(page.texts("section.import-error h2.filename"), [filename]);
    assert_eq!(page.select("pre.problem")[0].text().collect::<String>(), problem, "the whole problem, as text");
    assert!(!page.body.contains("<script>alert(1)") && !page.body.contains("<img src=x"));

    let page = api.page("/dead-letters").await.assert_ok();
    assert_eq!(page.texts("#dead-letters td.reason strong"), ["malformed"]);
    assert_eq!(page.texts("#dead-letters .detail"), ["<b>not</b> a task message"]);
    let message: Value = serde_json::from_str(&page.texts("#dead-letters td.message pre")[0]).unwrap();
    assert_eq!(message, json!({"payload": "<script>alert(3)</script>"}));
    assert!(!page.body.contains("<script>alert(3)") && !page.body.contains("<b>not"));

    assert_eq!(api.page("/dead-letters?offset=-1").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(api.page("/import-errors?offset=abc").await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_users_page_is_for_admins_and_an_admin_creates_changes_and_deletes_users() {
    let api = TestApi::start().await;
    let operator = api.token_for(Role::Operator).await;
    assert_eq!(api.page_as(Some(&operator), "/users").await.status, StatusCode::FORBIDDEN);
    let forged = api
        .post_form(&operator, "/users", &[("username", "mallory"), ("password", "long-enough-1"), ("role", "admin")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    let admin = &api.admin_token;
    let created = api
        .post_form(
            admin,
            "/users",
            &[("mode", "create"), ("username", "newbie"), ("password", "long-enough-1"), ("role", "operator")],
        )
        .await;
    assert_eq!(see_other(&created), "/users");
    let page = api.page("/users").await.assert_ok();
    assert_eq!(page.texts("tr[data-username=newbie] td.role"), ["operator"]);
    assert!(!page.has("tr[data-username=mallory]"), "the operator's forged form created nobody");
    let login = api
        .send_as(None, Method::POST, "/auth/token", Some(r#"{"username":"newbie","password":"long-enough-1"}"#))
        .await;
    assert_eq!(login.status, StatusCode::CREATED, "the new user signs in: {}", login.text());

    let weak = api
        .post_form(
            admin,
            "/users",
            &[("mode", "create"), ("username", "weak"), ("password", "short"), ("role", "viewer")],
        )
        .await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST);
    assert!(alert(&weak).contains("password"), "{}", alert(&weak));
    assert_eq!(weak.attrs("#user-form input[name=username]", "value"), ["weak"], "the name typed stays");

    let changed =
        api.post_form(admin, "/users", &[("mode", "update"), ("username", "newbie"), ("role", "viewer")]).await;
    assert_eq!(see_other(&changed), "/users");
    assert_eq!(api_json(&api, "/api/v2/gust/users/newbie").await["role"], "viewer");

    assert_eq!(see_other(&api.post_form(admin, "/users/newbie/delete", &[]).await), "/users");
    assert_eq!(api.get("/api/v2/gust/users/newbie").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_trigger_form_works_from_a_browser_session_with_its_csrf_field() {
    let api = TestApi::start().await;
    api.add_dag(PARAMS_DAG).await;
    let page = api.page(TRIGGER).await.assert_ok();
    let csrf = page.attrs("#trigger-form input[name=csrf]", "value").pop().expect("the form carries its CSRF token");
    let fields = [("csrf", csrf.as_str()), ("param.env", "dev"), ("run_id", "from_browser")];
    let sent = api.post_form_with_cookie(&api.admin_token, "http://gust.test", TRIGGER, &fields).await;
    assert_eq!(see_other(&sent), "/dags/params_demo/runs/from_browser");
    let forged = api.post_form_with_cookie(&api.admin_token, "http://gust.test", TRIGGER, &fields[1..]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "without the token the form is refused");
    assert_eq!(run_count(&api, "params_demo").await, 1);
}
