//! The home page and the DAG list.

use axum::http::StatusCode;
use gust_tests::api::{TestApi, ETL_DAG};
use gust_webapi::auth::Role;

const PAUSED_DAG: &str = r#"
dag_id: reports
schedule: null
start_date: 2026-01-01
tags: [team-b, finance]
default_args: {owner: ana}
tasks:
  - id: only
    operator: noop
"#;

#[tokio::test]
async fn home_page_reports_database_health_run_counts_and_import_errors() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    api.start_run(ETL_DAG, r#"{"conf":{}}"#).await;
    let client = api.pool.get().await.unwrap();
    gust_shared::db::import_errors::record(&client, "dags/broken.yaml", "line 3: unknown operator `bsh`")
        .await
        .unwrap();

    let page = api.page("/").await.assert_ok();
    let cards = page.texts(".card");
    assert!(cards.iter().any(|c| c.contains("Metadata database") && c.contains("healthy")), "{cards:?}");
    assert!(cards.iter().any(|c| c.contains("Schedulers") && c.contains("not running")), "{cards:?}");
    let counts = page.texts("ul.counts li");
    assert_eq!(counts, vec!["queued 1"], "one queued run counted");
    assert!(page.body.contains("dags/broken.yaml") && page.body.contains("unknown operator `bsh`"));
}

#[tokio::test]
async fn dag_list_shows_each_dag_with_owner_schedule_tags_and_recent_run_bars() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    api.add_dag(PAUSED_DAG).await;
    let (run_id, _) = api.start_run(ETL_DAG, r#"{"conf":{}}"#).await;

    let page = api.page("/dags").await.assert_ok();
    assert_eq!(page.texts("a.dag-link"), vec!["etl", "reports"]);
    assert_eq!(page.attrs("a.dag-link", "href"), vec!["/dags/etl", "/dags/reports"]);
    let rows = page.texts("table.dags tbody tr");
    assert!(rows[0].contains("@daily") && rows[0].contains("team-a"), "{}", rows[0]);
    assert!(rows[1].contains("ana") && rows[1].contains("finance"), "{}", rows[1]);
    let bars = page.select("table.dags tbody tr:first-child .bars a");
    assert_eq!(bars.len(), 1, "one bar for the one run");
    assert!(bars[0].value().has_class("s-queued", scraper::CaseSensitivity::CaseSensitive));
    assert_eq!(bars[0].value().attr("href"), Some(format!("/dags/etl/runs/{}", run_id.replace('+', "%2B")).as_str()));
    assert!(rows[0].contains("due now") || rows[0].contains("UTC"), "a next run for @daily: {}", rows[0]);
}

#[tokio::test]
async fn dag_list_filters_by_search_text_and_tag_and_pages() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    api.add_dag(PAUSED_DAG).await;
    assert_eq!(api.page("/dags?q=rep").await.assert_ok().texts("a.dag-link"), vec!["reports"]);
    assert_eq!(api.page("/dags?tag=team-a").await.assert_ok().texts("a.dag-link"), vec!["etl"]);
    assert_eq!(api.page("/dags?q=nothing-like-it").await.assert_ok().texts("a.dag-link"), Vec::<String>::new());
    let page = api.page("/dags?offset=25").await.assert_ok();
    assert!(page.texts("a.dag-link").is_empty());
    assert!(page.has("nav.pager a[rel=prev]"));
    assert_eq!(api.page("/dags?show=sideways").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(api.page("/dags?offset=-1").await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn pause_toggle_pauses_through_the_api_and_a_viewer_has_no_toggle() {
    let api = TestApi::start().await;
    api.add_dag(ETL_DAG).await;
    let reply = api.post_form(&api.admin_token, "/dags/etl/pause", &[("is_paused", "true")]).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(api.get("/api/v2/dags/etl").await.json()["is_paused"], true);

    let viewer = api.token_for(Role::Viewer).await;
    let page = api.page_as(Some(&viewer), "/dags").await.assert_ok();
    assert!(!page.has("form[action='/dags/etl/pause']"), "a viewer sees no pause toggle");
    let forged = api.post_form(&viewer, "/dags/etl/pause", &[("is_paused", "false")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.body.contains("needs the operator role"), "{}", forged.body);
    assert_eq!(api.get("/api/v2/dags/etl").await.json()["is_paused"], true, "the forged post changed nothing");
}
