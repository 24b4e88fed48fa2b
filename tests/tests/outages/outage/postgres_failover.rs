//! A PostgreSQL primary with a synchronous streaming replica, both of the
//! test's own, and a multi-host `GUST__DATABASE__URL` with
//! `target_session_attrs=read-write`: the primary crashes mid-run and the
//! replica is promoted; every component reconnects to the new primary, the
//! run completes, nothing committed before the crash is lost, and no task
//! that had succeeded runs again.

use gust_tests::{ledger::Ledger, postgres_servers::PostgresReplicaPair, StackOptions, TestStack};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_promoted_mid_run_takes_over_and_no_committed_state_is_lost() {
    let pair = PostgresReplicaPair::start().await;
    let ledger = Ledger::new();
    let options =
        StackOptions { in_process_engine: false, database_server: Some(pair.server_url()), ..StackOptions::default() };
    let stack = TestStack::spawn_with(&[("failover.yaml", &ledger.chain_dag("failover", 3.0, 0))], options).await;
    assert!(stack.settings.database.url.contains(&format!(",127.0.0.1:{}/", pair.replica_port)));
    let scheduler = stack.start_process("gust-scheduler", "scheduler");
    let worker = stack.start_process("gust-worker", "worker");

    let run_id = stack.trigger("failover", json!({})).await;
    stack.wait_for_task_state("failover", &run_id, "slow", "running").await;
    let first_before = stack.task_instance("failover", &run_id, "first").await;
    assert_eq!(first_before["state"], "success");

    pair.crash_primary().await;
    pair.promote_replica().await;

    assert_eq!(stack.wait_for_run("failover", &run_id).await, "success");
    ledger.assert_each_finished_once(&["first", "slow", "last"]);
    // `first` committed its success on the old primary: the new primary has the same row, not a re-run.
    let first_after = stack.task_instance("failover", &run_id, "first").await;
    for field in ["state", "try_number", "start_date", "end_date", "hostname"] {
        assert_eq!(first_after[field], first_before[field], "{field} of `first` survived the failover");
    }
    for ti in stack.task_instances("failover", &run_id).await {
        assert_eq!(ti["try_number"], 1, "{ti}");
    }
    let promoted = pair.psql(pair.replica_port, "SELECT pg_is_in_recovery()").await;
    assert_eq!(promoted.trim(), "f", "the replica is now the primary");
    assert!(scheduler.output().contains("LISTEN connection lost"), "{}", scheduler.output());
    // The stack still works on the new primary: a second run succeeds.
    let second_run = stack.trigger("failover", json!({})).await;
    assert_eq!(stack.wait_for_run("failover", &second_run).await, "success");
    drop(worker);
    stack.stop().await;
}
