//! `gust db clean` against the local PostgreSQL: on a database of its own
//! with old and recent, finished and live runs (with task instances, tries,
//! logs and XComs), dead letters and event log records, arranged in SQL.
//! Also the schedulers' periodic retention (`GUST__RETENTION__MAX_AGE`),
//! whose loop (`gust_shared::retention::run_periodically`) is run directly.

use deadpool_postgres::Pool;

use crate::helpers::{gust_with_env, Run, Scratch};

const DAG: &str = r#"
dag_id: tidy
schedule: "@daily"
start_date: 2026-01-01
tasks:
  - id: only
    operator: noop
"#;

/// Runs `gust db clean args…` on the database at `url` (standard input is not a terminal).
fn clean(scratch: &Scratch, url: &str, args: &[&str]) -> Run {
    let mut all = vec!["db", "clean"];
    all.extend_from_slice(args);
    gust_with_env(&scratch.dir, &all, &[("GUST__DATABASE__URL", url)])
}

/// A run of `tidy` in `state` that ended `days_ago` (or is live), with one
/// task instance, one try, two log lines and an XCom.
async fn add_run(pool: &Pool, run_id: &str, run_type: &str, state: &str, days_ago: i32, logical_day: i32) {
    let client = pool.get().await.unwrap();
    let finished = state == "success" || state == "failed";
    let run_pk: i64 = client
        .query_one(
            r#"
INSERT INTO dag_runs (dag_id, run_id, run_type, logical_date, state, dag_version_id, queued_at, start_date, end_date)
SELECT 'tidy', $1, $2, '2026-01-01'::timestamptz + make_interval(days => $5), $3, latest_version_id,
    now() - make_interval(days => $4), now() - make_interval(days => $4),
    CASE WHEN $6 THEN now() - make_interval(days => $4) END
FROM dags WHERE dag_id = 'tidy' RETURNING id"#,
            &[&run_id, &run_type, &state, &days_ago, &logical_day, &finished],
        )
        .await
        .unwrap()
        .get(0);
    let ti_state = if finished { state } else { "running" };
    let ti: uuid::Uuid = client
        .query_one(
            "INSERT INTO task_instances (run_pk, dag_id, run_id, task_id, operator, queue, state, try_number) \
             VALUES ($1, 'tidy', $2, 'only', 'noop', 'default', $3, 1) RETURNING id",
            &[&run_pk, &run_id, &ti_state],
        )
        .await
        .unwrap()
        .get(0);
    client
        .batch_execute(&format!(
            "INSERT INTO task_instance_tries (ti_id, try_number, state) VALUES ('{ti}', 1, '{ti_state}');
             INSERT INTO task_logs (ti_id, try_number, stream, line) VALUES ('{ti}', 1, 'stdout', 'a'), ('{ti}', 1, 'stdout', 'b');
             INSERT INTO xcom (ti_id, key, value, try_number) VALUES ('{ti}', 'return_value', '1', 1);"
        ))
        .await
        .unwrap();
}

/// Old and recent rows of every kind; see the test for which should go.
async fn seed(pool: &Pool) {
    let dag = gust_shared::dag::parse_dag_file("dags/tidy.yaml", DAG).unwrap();
    let client = pool.get().await.unwrap();
    gust_shared::db::dags::upsert(&client, &dag, "/dags/tidy.yaml", "hash-1", DAG, false).await.unwrap();
    add_run(pool, "old_manual_success", "manual", "success", 100, 1).await;
    add_run(pool, "old_manual_failed", "manual", "failed", 90, 2).await;
    add_run(pool, "old_scheduled", "scheduled", "success", 80, 3).await;
    add_run(pool, "latest_scheduled", "scheduled", "success", 70, 4).await;
    add_run(pool, "old_but_running", "manual", "running", 100, 5).await;
    add_run(pool, "old_but_queued", "manual", "queued", 100, 6).await;
    add_run(pool, "recent_success", "manual", "success", 1, 7).await;
    client
        .batch_execute(
            "INSERT INTO dead_letters (queue, routing_key, reason, detail, dag_id, body, received_at) VALUES
                 ('q', 'default', 'malformed', 'd', 'tidy', 'x', now() - interval '100 days'),
                 ('q', 'default', 'malformed', 'd', 'tidy', 'x', now());
             INSERT INTO event_log (event, dag_id, dttm) VALUES
                 ('trigger_dag_run', 'tidy', now() - interval '100 days'), ('login', NULL, now() - interval '100 days'),
                 ('clear', 'tidy', now());",
        )
        .await
        .unwrap();
}

/// The rows of every table the clean touches, and the runs left.
async fn snapshot(pool: &Pool) -> (Vec<i64>, Vec<String>) {
    let client = pool.get().await.unwrap();
    let counts = client
        .query_one(
            "SELECT (SELECT count(*) FROM dag_runs), (SELECT count(*) FROM task_instances),
                    (SELECT count(*) FROM task_instance_tries), (SELECT count(*) FROM task_logs),
                    (SELECT count(*) FROM xcom), (SELECT count(*) FROM dead_letters), (SELECT count(*) FROM event_log)",
            &[],
        )
        .await
        .unwrap();
    let runs = client.query("SELECT run_id FROM dag_runs ORDER BY run_id", &[]).await.unwrap();
    ((0..7).map(|i| counts.get(i)).collect(), runs.iter().map(|r| r.get(0)).collect())
}

#[tokio::test]
async fn clean_deletes_old_finished_runs_with_all_their_rows_and_keeps_recent_live_and_latest_scheduled_ones() {
    let database = gust_tests::database::isolated().await;
    seed(&database.pool).await;
    let scratch = Scratch::new("db-clean");
    let run = clean(&scratch, &database.url, &["--before", "30d", "--yes", "--batch-size", "1"]).expect_code(0);
    assert!(run.stdout.contains("Deleted in"), "{}", run.stdout);
    assert!(run.stderr.contains("batch 3:"), "three runs, one per transaction:\n{}", run.stderr);
    let (counts, runs) = snapshot(&database.pool).await;
    assert_eq!(
        runs,
        ["latest_scheduled", "old_but_queued", "old_but_running", "recent_success"],
        "old finished runs are gone; live ones, recent ones and the DAG's latest scheduled run stay"
    );
    // runs, task instances, tries, logs, XComs, dead letters, event log records: what the 4 kept runs have.
    assert_eq!(counts, [4, 4, 4, 8, 4, 1, 1]);
}

#[tokio::test]
async fn a_dry_run_prints_counts_per_table_and_deletes_nothing() {
    let database = gust_tests::database::isolated().await;
    seed(&database.pool).await;
    let before = snapshot(&database.pool).await;
    let scratch = Scratch::new("db-clean-dry");
    let run = clean(&scratch, &database.url, &["--before", "30d", "--dry-run"]).expect_code(0);
    let count = |table: &str| -> Option<u64> {
        let line = run.stdout.lines().find(|l| l.split_whitespace().next() == Some(table))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    let expected = [("dag_runs", 3), ("task_instances", 3), ("task_instance_tries", 3), ("task_logs", 6), ("xcom", 3)];
    for (table, rows) in expected.into_iter().chain([("dead_letters", 1), ("event_log", 2)]) {
        assert_eq!(count(table), Some(rows), "{table}:\n{}", run.stdout);
    }
    assert!(run.stdout.contains("nothing was deleted"), "{}", run.stdout);
    assert_eq!(snapshot(&database.pool).await, before);

    let one_dag = clean(&scratch, &database.url, &["--before", "30d", "--dry-run", "--dag-id", "other"]).expect_code(0);
    assert_eq!(one_dag.stdout.lines().filter(|l| l.ends_with(" 0")).count(), 7, "{}", one_dag.stdout);
}

#[tokio::test]
async fn without_yes_on_a_non_terminal_clean_refuses_and_says_to_pass_yes() {
    let database = gust_tests::database::isolated().await;
    seed(&database.pool).await;
    let before = snapshot(&database.pool).await;
    let scratch = Scratch::new("db-clean-refuse");
    let run = clean(&scratch, &database.url, &["--before", "30d"]).expect_code(2);
    assert!(run.stderr.contains("--yes") && run.stderr.contains("not a terminal"), "{}", run.stderr);
    assert_eq!(snapshot(&database.pool).await, before);
    let bad = clean(&scratch, &database.url, &["--before", "someday", "--yes"]).expect_code(2);
    assert!(bad.stderr.contains("--before"), "{}", bad.stderr);
}

#[tokio::test]
async fn the_schedulers_periodic_retention_deletes_what_gust_db_clean_would() {
    let database = gust_tests::database::isolated().await;
    seed(&database.pool).await;
    let max_age = std::time::Duration::from_secs(30 * 24 * 60 * 60);
    let interval = std::time::Duration::from_millis(200);
    let retention = tokio::spawn(gust_shared::retention::run_periodically(database.pool.clone(), max_age, interval, 2));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let left = loop {
        let left = snapshot(&database.pool).await;
        if left.0[0] == 4 || std::time::Instant::now() > deadline {
            break left;
        }
        tokio::time::sleep(interval).await;
    };
    retention.abort();
    assert_eq!(left.1, ["latest_scheduled", "old_but_queued", "old_but_running", "recent_success"]);
    assert_eq!(left.0, [4, 4, 4, 8, 4, 1, 1]);
}
