//! The DAG pages: grid, graph, Gantt, run list, source and params.

use axum::http::StatusCode;
use gust_shared::db;
use gust_tests::{
    api::{TestApi, ETL_DAG},
    ui::Page,
};
use gust_webapi::auth::Role;
use scraper::CaseSensitivity::CaseSensitive;

/// `a → b → d`, `a → c → d`: four tasks, four edges.
const DIAMOND_DAG: &str = r#"
dag_id: diamond
start_date: 2026-01-01
tasks:
  - {id: a, operator: noop}
  - {id: b, operator: noop, depends_on: [a]}
  - {id: c, operator: noop, depends_on: [a]}
  - {id: d, operator: noop, depends_on: [b, c]}
"#;

/// A DAG whose second task is mapped over twenty elements.
const MAPPED_DAG: &str = r#"
dag_id: fanout
start_date: 2026-01-01
tasks:
  - {id: start, operator: noop}
  - id: fan
    operator: bash
    command: echo {{ item }}
    expand: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]
    depends_on: [start]
"#;

/// A DAG with a hostile description and params of several kinds.
const HOSTILE_DAG: &str = r#"
dag_id: hostile
description: "<script>alert(1)</script> & friends"
start_date: 2026-01-01
params:
  region: eu
  count: {type: integer, default: 1, minimum: 1, maximum: 100, title: How many, description: "rows to load"}
  env: {type: string, enum: [dev, prod], description: target}
tasks:
  - {id: only, operator: noop}
"#;

async fn run(api: &TestApi, yaml: &str, run_id: &str) -> i64 {
    api.start_run(yaml, &format!(r#"{{"conf":{{}},"dag_run_id":"{run_id}"}}"#)).await.1
}

async fn sql(api: &TestApi, statement: &str) {
    api.pool.get().await.unwrap().batch_execute(statement).await.unwrap();
}

fn has_class(page: &Page, css: &str, class: &str) -> bool {
    let found = page.select(css);
    assert_eq!(found.len(), 1, "one element matches {css}");
    found[0].value().has_class(class, CaseSensitive)
}

#[tokio::test]
async fn grid_cell_shows_each_task_state_of_each_run() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    run(&api, ETL_DAG, "r1").await;
    run(&api, ETL_DAG, "r2").await;
    sql(&api, "UPDATE task_instances SET state = 'failed' WHERE task_id = 'extract' AND run_id = 'r1'").await;
    sql(&api, "UPDATE task_instances SET state = 'upstream_failed' WHERE task_id = 'load' AND run_id = 'r1'").await;
    sql(&api, "UPDATE task_instances SET state = 'success' WHERE task_id = 'extract' AND run_id = 'r2'").await;

    let page = api.page("/dags/etl").await.assert_ok();
    assert_eq!(page.texts("table.grid tbody th[scope=row]"), vec!["extract", "load"], "the DAG's task order");
    assert_eq!(page.texts("table.grid thead th[scope=col] .sr-only"), vec!["r1, queued", "r2, queued"], "oldest left");
    assert_eq!(page.attrs("table.grid thead a.run", "href"), vec!["/dags/etl/runs/r1", "/dags/etl/runs/r2"]);
    let expected = [("r1", "extract", "failed"), ("r1", "load", "upstream_failed"), ("r2", "extract", "success")];
    for (run_id, task, state) in expected {
        let css = format!(r#"td a.cell[data-run="{run_id}"][data-task="{task}"]"#);
        assert!(has_class(&page, &css, &format!("s-{state}")), "{css} is {state}");
        assert_eq!(page.texts(&format!("{css} .sr-only")), vec![state]);
        assert_eq!(page.attrs(&css, "title"), vec![state]);
    }
    let unset = r#"td a.cell[data-run="r2"][data-task="load"]"#;
    assert!(has_class(&page, unset, "s-none"));
    assert_eq!(page.texts(&format!("{unset} .sr-only")), vec!["no status"]);
    assert_eq!(page.select("td a.cell").len(), 4);
}

#[tokio::test]
async fn grid_groups_a_mapped_task_into_one_cell_with_a_count() {
    let api = TestApi::start().await;
    api.add_dag(MAPPED_DAG).await;
    run(&api, MAPPED_DAG, "m1").await;
    sql(
        &api,
        r#"
DELETE FROM task_instances WHERE task_id = 'fan';
INSERT INTO task_instances (run_pk, dag_id, run_id, task_id, map_index, operator, queue, state)
SELECT r.id, 'fanout', 'm1', 'fan', g, 'bash', 'default', CASE WHEN g < 12 THEN 'success' ELSE 'running' END
FROM dag_runs r, generate_series(0, 19) g WHERE r.run_id = 'm1';
UPDATE task_instances SET state = 'success' WHERE task_id = 'start';"#,
    )
    .await;

    let page = api.page("/dags/fanout").await.assert_ok();
    let cell = r#"td a.cell[data-run="m1"][data-task="fan"]"#;
    assert_eq!(page.select(cell).len(), 1, "twenty instances, one cell");
    assert!(has_class(&page, cell, "s-running"), "a running member outranks the successful ones");
    assert_eq!(page.texts(&format!("{cell} .count")), vec!["8/20 running"]);
    assert_eq!(page.attrs(cell, "title"), vec!["8 running, 12 success"]);
    assert_eq!(page.texts("table.grid tbody th[scope=row]"), vec!["start", "fan [20]"]);
    assert_eq!(page.texts(r#"td a.cell[data-task="start"] .count"#), Vec::<String>::new(), "no count when not mapped");
}

#[tokio::test]
async fn selecting_a_cell_outlines_it_and_links_to_the_task_page() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    run(&api, ETL_DAG, "r1").await;
    run(&api, ETL_DAG, "r2").await;

    let page = api.page("/dags/etl").await.assert_ok();
    assert_eq!(
        page.attrs(r#"td a.cell[data-run="r1"][data-task="load"]"#, "href"),
        vec!["/dags/etl/runs/r1/tasks/load"]
    );
    assert!(!page.has("a.selected"));

    let page = api.page("/dags/etl?run_id=r1&task_id=load").await.assert_ok();
    let selected = page.select("td a.cell.selected");
    assert_eq!(selected.len(), 1);
    assert_eq!(selected[0].value().attr("data-run"), Some("r1"));
    assert_eq!(selected[0].value().attr("data-task"), Some("load"));
    assert_eq!(page.attrs("thead a.run.selected", "href"), vec!["/dags/etl/runs/r1"]);
    assert!(page.attrs(".selection a", "href").contains(&"/dags/etl/runs/r1/tasks/load".to_string()));
}

#[tokio::test]
async fn grid_polls_while_a_run_is_live_and_stops_when_all_finished() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    run(&api, ETL_DAG, "r1").await;
    sql(&api, "UPDATE dag_runs SET state = 'running', start_date = now()").await;

    let page = api.page("/dags/etl?runs=10").await.assert_ok();
    assert_eq!(page.attrs("section#grid", "hx-trigger"), vec!["every 3s"]);
    let fragment = page.attrs("section#grid", "hx-get").remove(0);
    assert_eq!(fragment, "/dags/etl?fragment=grid&runs=10");
    let polled = api.page(&fragment).await.assert_ok();
    assert!(!polled.body.contains("<nav"), "the fragment is the section alone: {}", polled.body);
    assert_eq!(polled.attrs("section#grid", "hx-trigger"), vec!["every 3s"]);
    assert_eq!(polled.select("td a.cell").len(), 2);

    sql(&api, "UPDATE task_instances SET state = 'success'; UPDATE dag_runs SET state = 'success', end_date = now()")
        .await;
    let page = api.page("/dags/etl").await.assert_ok();
    assert!(page.has("section#grid"));
    assert!(!page.has("[hx-trigger]"), "nothing live, nothing polls");
    let polled = api.page(&fragment).await.assert_ok();
    assert!(!polled.has("[hx-trigger]"), "the last poll renders without its trigger, so polling stops");
}

#[tokio::test]
async fn dag_header_has_the_tabs_and_trigger_links_only_for_those_who_may_trigger() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;

    let page = api.page("/dags/etl").await.assert_ok();
    assert_eq!(page.texts("nav.tabs > a"), vec!["Grid", "Graph", "Gantt", "Runs", "Code", "Params"]);
    assert_eq!(
        page.attrs("nav.tabs > a", "href"),
        vec!["/dags/etl", "/dags/etl/graph", "/dags/etl/gantt", "/dags/etl/runs", "/dags/etl/code", "/dags/etl/params"]
    );
    assert_eq!(page.attrs("nav.tabs > a[aria-current=page]", "href"), vec!["/dags/etl"]);
    assert_eq!(page.attrs("a#trigger-link", "href"), vec!["/dags/etl/trigger"]);
    assert_eq!(page.attrs("a#backfill-link", "href"), vec!["/dags/etl/backfill"]);
    let head = page.texts(".dag-head").remove(0);
    for expected in ["etl", "nightly load", "@daily", "team-a", "v1", "active"] {
        assert!(head.contains(expected), "{expected:?} in {head:?}");
    }
    assert!(page.has("p.notice"), "a DAG without runs says so");

    let viewer = api.token_for(Role::Viewer).await;
    let page = api.page_as(Some(&viewer), "/dags/etl/params").await.assert_ok();
    assert_eq!(page.attrs("nav.tabs > a[aria-current=page]", "href"), vec!["/dags/etl/params"]);
    assert!(!page.has("a#trigger-link") && !page.has("a#backfill-link"), "a viewer gets no trigger links");
}

#[tokio::test]
async fn graph_draws_one_node_per_task_and_one_path_per_edge_coloured_by_state() {
    let api = TestApi::start().await;
    api.add_dag(DIAMOND_DAG).await;
    run(&api, DIAMOND_DAG, "g1").await;
    sql(&api, "UPDATE task_instances SET state = 'success' WHERE task_id = 'a'").await;
    sql(&api, "UPDATE task_instances SET state = 'failed' WHERE task_id = 'b'").await;
    sql(&api, "UPDATE task_instances SET state = 'running' WHERE task_id = 'c'").await;

    let page = api.page("/dags/diamond/graph").await.assert_ok();
    assert_eq!(page.attrs("svg a.node", "data-task"), vec!["a", "b", "c", "d"]);
    let edges: Vec<(String, String)> = page
        .select("svg path.edge")
        .iter()
        .map(|e| (e.value().attr("data-from").unwrap().into(), e.value().attr("data-to").unwrap().into()))
        .collect();
    let expected = [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")];
    assert_eq!(edges, expected.map(|(f, t)| (f.to_string(), t.to_string())));
    for (task, state) in [("a", "success"), ("b", "failed"), ("c", "running"), ("d", "none")] {
        assert!(has_class(&page, &format!(r#"svg a.node[data-task="{task}"]"#), &format!("s-{state}")), "{task}");
    }
    assert_eq!(page.attrs(r#"svg a.node[data-task="b"]"#, "href"), vec!["/dags/diamond/runs/g1/tasks/b"]);
    assert_eq!(page.texts("svg a.node text"), vec!["a", "b", "c", "d"]);
    assert_eq!(page.attrs("section#graph", "hx-trigger"), vec!["every 3s"], "the run is queued: the graph polls");

    sql(&api, "UPDATE dag_runs SET state = 'failed'").await;
    let page = api.page("/dags/diamond/graph?run_id=g1").await.assert_ok();
    assert!(!page.has("[hx-trigger]"));
    assert_eq!(api.page("/dags/diamond/graph?run_id=nope").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn graph_shows_the_version_the_run_used() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    run(&api, ETL_DAG, "old").await;
    let newer = ETL_DAG.replace("  - id: load", "  - id: audit\n    operator: noop\n  - id: load");
    store_version(&api, &newer, "hash-2").await;

    let page = api.page("/dags/etl/graph?run_id=old").await.assert_ok();
    assert_eq!(page.attrs("svg a.node", "data-task"), vec!["extract", "load"]);
    assert!(page.body.contains("Version v1"));
    let header = page.texts(".dag-head").remove(0);
    assert!(header.contains("v2"), "the header names the latest version: {header}");
}

async fn store_version(api: &TestApi, yaml: &str, hash: &str) {
    let dag = gust_shared::dag::parse_dag_file("dags/test.yaml", yaml).unwrap();
    let client = api.pool.get().await.unwrap();
    assert!(db::dags::upsert(&client, &dag, "/dags/etl.yaml", hash, yaml, false).await.unwrap(), "a new version");
}

#[tokio::test]
async fn gantt_draws_a_running_task_up_to_now_and_leaves_unstarted_rows_empty() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    run(&api, ETL_DAG, "t1").await;
    sql(
        &api,
        r#"
UPDATE dag_runs SET state = 'running', start_date = now() - interval '3 minutes';
UPDATE task_instances SET state = 'running', queued_at = now() - interval '2 minutes',
    start_date = now() - interval '1 minute' WHERE task_id = 'extract';"#,
    )
    .await;

    let page = api.page("/dags/etl/gantt").await.assert_ok();
    assert_eq!(page.attrs("svg g.row", "data-task"), vec!["extract", "load"]);
    let bar = page.select(r#"g.row[data-task="extract"] rect.bar"#);
    assert_eq!(bar.len(), 1, "the running task has a bar");
    assert!(bar[0].value().has_class("s-running", CaseSensitive));
    let width: f64 = bar[0].value().attr("width").unwrap().parse().unwrap();
    assert!(width > 100.0, "a minute of a three-minute chart: {width}");
    assert!(page.has(r#"g.row[data-task="extract"] rect.queued-part"#), "the queued minute is drawn lighter");
    assert!(page.texts(r#"g.row[data-task="extract"] rect.bar title"#)[0].contains("now"));
    assert!(!page.has(r#"g.row[data-task="load"] rect"#), "a task not started is an empty row");
    assert!(page.select("svg text.tick").len() >= 2, "a time axis with ticks");
    assert_eq!(page.attrs("section#gantt", "hx-trigger"), vec!["every 3s"]);

    sql(&api, "UPDATE task_instances SET state = 'success', end_date = now(); UPDATE dag_runs SET state = 'success'")
        .await;
    let page = api.page("/dags/etl/gantt?run_id=t1").await.assert_ok();
    let bar = page.texts(r#"g.row[data-task="extract"] rect.bar.s-success title"#).remove(0);
    assert!(!bar.contains("now"), "a finished try ends at its end date: {bar}");
    assert!(!page.has("[hx-trigger]"));
}

#[tokio::test]
async fn runs_tab_lists_runs_filtered_by_state_and_type_with_links() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    run(&api, ETL_DAG, "first").await;
    run(&api, ETL_DAG, "second").await;
    sql(&api, "UPDATE dag_runs SET state = 'success' WHERE run_id = 'first'").await;

    let page = api.page("/dags/etl/runs").await.assert_ok();
    assert_eq!(page.texts("a.run-link"), vec!["second", "first"], "newest first");
    assert_eq!(page.attrs("a.run-link", "href"), vec!["/dags/etl/runs/second", "/dags/etl/runs/first"]);
    let page = api.page("/dags/etl/runs?state=success").await.assert_ok();
    assert_eq!(page.texts("a.run-link"), vec!["first"]);
    assert_eq!(page.attrs("select[name=state] option[selected]", "value"), vec!["success"]);
    let page = api.page("/dags/etl/runs?run_type=scheduled").await.assert_ok();
    assert!(page.texts("a.run-link").is_empty());
    let page = api.page("/dags/etl/runs?limit=1&offset=1").await.assert_ok();
    assert_eq!(page.texts("a.run-link"), vec!["first"]);
    assert_eq!(page.attrs(".pager a[rel=prev]", "href"), vec!["/dags/etl/runs?state=&run_type=&limit=1&offset=0"]);
}

#[tokio::test]
async fn code_tab_shows_the_yaml_as_text_even_when_it_holds_markup() {
    let api = TestApi::start().await;
    api.add_dag(HOSTILE_DAG).await;

    let page = api.page("/dags/hostile/code").await.assert_ok();
    let source = page.texts("pre.source").remove(0);
    assert!(source.contains(r#"description: "<script>alert(1)</script> & friends""#), "{source}");
    assert!(source.contains("dag_id: hostile"));
    assert!(!page.body.contains("<script>alert"), "no script element reaches the page");
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_eq!(page.texts(".dag-head .description"), vec!["<script>alert(1)</script> & friends"]);
    assert_eq!(page.texts("table.versions a"), vec!["v1"]);
    assert_eq!(page.attrs("table.versions a", "href"), vec!["/dags/hostile/code?version=1"]);
}

#[tokio::test]
async fn code_tab_shows_the_source_of_the_version_a_run_used() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    run(&api, ETL_DAG, "old").await;
    let newer = ETL_DAG.replace("nightly load", "hourly load");
    store_version(&api, &newer, "hash-2").await;

    let latest = api.page("/dags/etl/code").await.assert_ok();
    assert!(latest.texts("pre.source")[0].contains("hourly load"));
    assert_eq!(latest.texts("table.versions a"), vec!["v2", "v1"]);
    let of_run = api.page("/dags/etl/code?run_id=old").await.assert_ok();
    assert!(of_run.texts("pre.source")[0].contains("nightly load"));
    assert!(of_run.texts("h2")[0].contains("used by run old"));
    let by_number = api.page("/dags/etl/code?version=1").await.assert_ok();
    assert!(by_number.texts("pre.source")[0].contains("nightly load"));
    assert_eq!(api.page("/dags/etl/code?version=7").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn code_tab_explains_a_version_stored_before_sources_were_kept() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    sql(&api, "UPDATE dag_versions SET source = NULL").await;

    let page = api.page("/dags/etl/code").await.assert_ok();
    assert!(!page.has("pre.source"));
    let note = page.texts("#no-source").remove(0);
    assert!(note.contains("stored before gust kept DAG sources") && note.contains("re-parse the file"), "{note}");
    assert!(page.texts("pre.json")[0].contains("\"extract\""), "the parsed definition is shown instead");

    // Parsing the unchanged file again stores its text in that version.
    let dag = gust_shared::dag::parse_dag_file("dags/test.yaml", ETL_DAG).unwrap();
    let client = api.pool.get().await.unwrap();
    assert!(!db::dags::upsert(&client, &dag, "/dags/etl.yaml", "hash-1", ETL_DAG, false).await.unwrap());
    assert!(api.page("/dags/etl/code").await.assert_ok().texts("pre.source")[0].contains("dag_id: etl"));
}

#[tokio::test]
async fn params_tab_lists_each_param_with_type_default_and_bounds() {
    let api = TestApi::start().await;
    api.add_dag(HOSTILE_DAG).await;

    let page = api.page("/dags/hostile/params").await.assert_ok();
    assert_eq!(page.texts("table.params tbody th"), vec!["count", "env", "region"]);
    let cell = |name: &str, column: &str| page.texts(&format!(r#"tr[data-param="{name}"] td.{column}"#)).remove(0);
    assert_eq!(cell("count", "type"), "integer");
    assert_eq!(cell("count", "default"), "1");
    assert_eq!(cell("count", "minimum"), "1");
    assert_eq!(cell("count", "maximum"), "100");
    assert_eq!(cell("count", "title"), "How many");
    assert_eq!(cell("count", "description"), "rows to load");
    assert_eq!(cell("env", "default"), "required");
    assert_eq!(cell("env", "enum"), r#""dev", "prod""#);
    assert_eq!(cell("region", "type"), "any");
    assert_eq!(cell("region", "default"), r#""eu""#);

    api.add_dag(ETL_DAG).await;
    let page = api.page("/dags/etl/params").await.assert_ok();
    assert_eq!(page.texts("p.notice"), vec!["This DAG declares no params."]);
}

#[tokio::test]
async fn unknown_dag_is_a_404_page_on_every_tab() {
    let api = TestApi::start().await;
    for tab in ["", "/graph", "/gantt", "/runs", "/code", "/params"] {
        let page = api.page(&format!("/dags/nope{tab}")).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{tab}");
        assert!(page.texts("[role=alert]")[0].contains("no DAG `nope`"), "{tab}: {}", page.body);
    }
}

#[tokio::test]
async fn bad_query_values_are_400_or_404_pages_not_errors() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    run(&api, ETL_DAG, "r1").await;
    let cases = [
        ("/dags/etl?runs=abc", StatusCode::BAD_REQUEST),
        ("/dags/etl?runs=0", StatusCode::BAD_REQUEST),
        ("/dags/etl?runs=101", StatusCode::BAD_REQUEST),
        ("/dags/etl?run_id=nope", StatusCode::NOT_FOUND),
        ("/dags/etl/gantt?run_id=nope", StatusCode::NOT_FOUND),
        ("/dags/etl/runs?state=bogus", StatusCode::BAD_REQUEST),
        ("/dags/etl/runs?run_type=bogus", StatusCode::BAD_REQUEST),
        ("/dags/etl/runs?offset=-1", StatusCode::BAD_REQUEST),
        ("/dags/etl/runs?limit=x", StatusCode::BAD_REQUEST),
        ("/dags/etl/code?version=x", StatusCode::BAD_REQUEST),
        ("/dags/etl/code?run_id=nope", StatusCode::NOT_FOUND),
    ];
    for (path, status) in cases {
        let page = api.page(path).await;
        assert_eq!(page.status, status, "{path}: {}", page.body);
        assert!(page.has("[role=alert]"), "{path} is an HTML error page");
    }
    assert_eq!(api.page("/dags/etl?runs=100&run_id=r1").await.status, StatusCode::OK);
}
