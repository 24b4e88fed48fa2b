//! Outages of the services themselves: RabbitMQ and PostgreSQL restart in
//! the middle of a run. These tests restart the machine's real services, so
//! scripts/test runs them on their own, one at a time.

mod outage {
    use std::time::Duration;

    use gust_tests::{ledger::Ledger, StackOptions, TestStack};
    use serde_json::json;

    /// Runs a shell command that controls a local service; fails the test with its output.
    fn service(command: &str) {
        let output = std::process::Command::new("bash")
            .arg("-c")
            .arg(command)
            .output()
            .unwrap_or_else(|e| panic!("running `{command}`: {e}"));
        assert!(
            output.status.success(),
            "`{command}` failed (these tests restart the local RabbitMQ/PostgreSQL and need root): {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    const PG_CLUSTER: &str = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql | sort -V | tail -1) main";

    fn chain(dag_id: &str, ledger: &Ledger, seconds: f64) -> String {
        format!(
            "dag_id: {dag_id}\ntasks:\n  - {{id: first, operator: bash, command: '{}'}}\n  - {{id: slow, operator: bash, command: '{}', depends_on: [first]}}\n  - {{id: last, operator: bash, command: '{}', depends_on: [slow]}}\n",
            ledger.command(0.0),
            ledger.command(seconds),
            ledger.command(0.0)
        )
    }

    fn each_once(ledger: &Ledger) {
        let done = ledger.completions();
        for task in ["first", "slow", "last"] {
            assert_eq!(done.get(task), Some(&1), "{task} finished exactly once: {done:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn broker_restart_mid_run_loses_nothing_and_runs_nothing_twice() {
        let ledger = Ledger::new();
        let options = StackOptions { in_process_engine: false, ..StackOptions::default() };
        let stack = TestStack::spawn_with(&[("bounce.yaml", &chain("bounce", &ledger, 3.0))], options).await;
        let _scheduler = stack.start_process("gust-scheduler", "scheduler");
        let _worker = stack.start_process("gust-worker", "worker");
        let run_id = stack.trigger("bounce", json!({})).await;

        stack.wait_for_task_state("bounce", &run_id, "slow", "running").await;
        service("rabbitmqctl stop_app");
        tokio::time::sleep(Duration::from_secs(3)).await;
        service("rabbitmqctl start_app && rabbitmqctl await_startup");

        assert_eq!(stack.wait_for_run("bounce", &run_id).await, "success");
        each_once(&ledger);
        for ti in stack.task_instances("bounce", &run_id).await {
            assert_eq!(ti["try_number"], 1, "{ti}");
        }
        stack.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn database_restart_mid_run_is_survived_and_a_finished_task_is_committed_afterwards() {
        let ledger = Ledger::new();
        let options = StackOptions { in_process_engine: false, ..StackOptions::default() };
        let stack = TestStack::spawn_with(&[("dbdown.yaml", &chain("dbdown", &ledger, 1.0))], options).await;
        let _scheduler = stack.start_process("gust-scheduler", "scheduler");
        let worker = stack.start_process("gust-worker", "worker");
        let run_id = stack.trigger("dbdown", json!({})).await;

        stack.wait_for_task_state("dbdown", &run_id, "slow", "running").await;
        service(&format!("{PG_CLUSTER} stop -m fast"));
        // `slow` finishes while PostgreSQL is down; its worker must hold the delivery and retry the commit.
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(ledger.completions().get("slow"), Some(&1), "slow finished during the outage");
        service(&format!("{PG_CLUSTER} start"));

        assert_eq!(stack.wait_for_run("dbdown", &run_id).await, "success");
        each_once(&ledger);
        // The worker kept the finished try's log and outcome, retrying until PostgreSQL was back.
        assert!(worker.output().contains("failed; retrying"), "{}", worker.output());
        for ti in stack.task_instances("dbdown", &run_id).await {
            assert_eq!(ti["try_number"], 1, "{ti}");
        }
        stack.stop().await;
    }
}
