//! The scheduler keeps the planner's statistics of `task_instances` in step
//! with its size (docs/planner-statistics.md): a run that doubles the table
//! gets it analyzed, so no session keeps plans made for a smaller table; a
//! small run does not. gust's connections run without JIT compilation.

use gust_tests::TestStack;
use serde_json::json;

/// Tasks of the big fan-out: the table grows from a handful of rows past 1,000.
const BIG: usize = 1_200;

fn fan_out(dag_id: &str, tasks: usize) -> String {
    let mut yaml = format!("dag_id: {dag_id}\ntasks:\n");
    for i in 0..tasks {
        yaml.push_str(&format!("  - {{id: t{i}, operator: noop}}\n"));
    }
    yaml
}

/// When `task_instances` was last analyzed by a session (not autovacuum), and the rows it counted then.
async fn last_analyze(stack: &TestStack) -> (Option<chrono::DateTime<chrono::Utc>>, f32) {
    let client = stack.pool.get().await.expect("a database connection");
    let row = client
        .query_one(
            "SELECT s.last_analyze, c.reltuples FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
             WHERE s.relname = 'task_instances'",
            &[],
        )
        .await
        .expect("the statistics of task_instances");
    (row.get(0), row.get(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_that_doubles_the_task_instances_table_gets_it_analyzed_and_a_small_one_does_not() {
    let stack = TestStack::spawn(&[("small.yaml", &fan_out("small", 20)), ("big.yaml", &fan_out("big", BIG))]).await;
    stack.wait_for_dag("small").await;
    stack.wait_for_dag("big").await;

    let small = stack.trigger("small", json!({})).await;
    assert_eq!(stack.wait_for_run("small", &small).await, "success");
    assert_eq!(last_analyze(&stack).await.0, None, "20 rows are too few to analyze for");

    let big = stack.trigger("big", json!({})).await;
    let reltuples = stack
        .eventually("the scheduler to analyze task_instances after creating the big run", || async {
            let (analyzed_at, reltuples) = last_analyze(&stack).await;
            analyzed_at.map(|_| reltuples)
        })
        .await;
    assert!(reltuples >= BIG as f32, "the statistics count the big run's rows: {reltuples}");
    assert_eq!(stack.wait_for_run("big", &big).await, "success");
}

#[tokio::test]
async fn gust_connections_run_without_jit_unless_the_url_asks_for_it() {
    let settings = gust_tests::isolated_settings().await;
    let url = &settings.database.url;
    let jit_of = |url: String| async move {
        let pool = gust_shared::db::connect(&url, 1).await.expect("the test database");
        let jit: String = pool.get().await.unwrap().query_one("SHOW jit", &[]).await.unwrap().get(0);
        jit
    };
    assert_eq!(jit_of(url.clone()).await, "off");
    let separator = if url.contains('?') { '&' } else { '?' };
    assert_eq!(jit_of(format!("{url}{separator}options=-c%20jit%3Don")).await, "on", "the URL's options come last");
    gust_shared::db::drop_database(url).await.unwrap();
}
