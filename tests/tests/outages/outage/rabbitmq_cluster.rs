//! A three-node RabbitMQ cluster of the test's own, gust's quorum queues
//! replicated on every node, and `GUST__AMQP__URL` listing all three: the
//! node that the scheduler and worker are connected to, and that leads the
//! work queue, stops mid-run; both fail over to the next node of the list,
//! re-declare their topology there, and the run succeeds with every task run
//! to its end exactly once. Then a retry waiting in its delay queue survives
//! the loss of the next node, and with two nodes of three down nothing moves
//! and nothing is lost until a second node is back.

use gust_tests::{ledger::Ledger, rabbitmq_cluster::RabbitCluster, StackOptions, TestStack};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stopping_the_node_that_leads_the_work_queue_mid_run_loses_nothing_and_runs_nothing_twice() {
    let cluster = RabbitCluster::start(3).await;
    let ledger = Ledger::new();
    let options = StackOptions { in_process_engine: false, amqp_url: Some(cluster.urls()), ..StackOptions::default() };
    let dir = std::env::temp_dir().join(format!("gust-flaky-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("creating the tasks' folder");
    let (go, waits_mark, gated_mark) = (dir.join("go"), dir.join("waits-failed"), dir.join("gated-failed"));
    let flaky = format!(
        "dag_id: flaky\ntasks:\n  - {{id: waits, operator: bash, retries: 1, retry_delay: 6s, command: 'test -e {w} || {{ touch {w}; exit 1; }}'}}\n  - {{id: gated, operator: bash, retries: 1, retry_delay: 1s, command: 'while [ ! -e {go} ]; do sleep 0.1; done; test -e {g} || {{ touch {g}; exit 1; }}'}}\n",
        w = waits_mark.display(),
        g = gated_mark.display(),
        go = go.display()
    );
    let dags = [("cluster.yaml", ledger.chain_dag("cluster", 3.0, 0)), ("flaky.yaml", flaky)];
    let dags: Vec<(&str, &str)> = dags.iter().map(|(name, yaml)| (*name, yaml.as_str())).collect();
    let stack = TestStack::spawn_with(&dags, options).await;
    let scheduler = stack.start_process("gust-scheduler", "scheduler");
    let worker = stack.start_process("gust-worker", "worker");
    let work_queue = format!("{}.q.default", stack.settings.amqp.namespace);

    let run_id = stack.trigger("cluster", json!({})).await;
    stack.wait_for_task_state("cluster", &run_id, "slow", "running").await;
    // Both components took the first URL; the queue was declared there, so that node leads it,
    // and its replicas are on all three nodes.
    assert_eq!(cluster.leader_of(1, &work_queue).await.as_deref(), Some(cluster.node_name(0)));
    let mut members = cluster.members_of(1, &work_queue).await;
    members.sort();
    let mut nodes: Vec<String> = (0..3).map(|i| cluster.node_name(i).to_string()).collect();
    nodes.sort();
    assert_eq!(members, nodes, "the work queue has a replica on every node");
    let on_first = cluster.connections_on(0).await;
    assert!(on_first.iter().any(|name| name == "gust-worker"), "{on_first:?}");
    assert!(on_first.iter().any(|name| name == "gust-scheduler"), "{on_first:?}");

    cluster.stop_node(0).await;
    stack
        .eventually("the worker to reconnect to another node", || async {
            worker.output().contains("reconnected to RabbitMQ").then_some(())
        })
        .await;
    assert_eq!(stack.wait_for_run("cluster", &run_id).await, "success");
    ledger.assert_each_finished_once(&["first", "slow", "last"]);
    for ti in stack.task_instances("cluster", &run_id).await {
        assert_eq!(ti["try_number"], 1, "{ti}");
    }
    let leader = cluster.leader_of(1, &work_queue).await.expect("the work queue has a leader");
    assert_ne!(leader, cluster.node_name(0), "a surviving node leads the work queue");
    let on_second = cluster.connections_on(1).await;
    assert!(on_second.iter().any(|name| name == "gust-worker"), "the worker moved to the next node: {on_second:?}");
    assert!(worker.output().contains("connected to a later RabbitMQ node of the list"), "{}", worker.output());

    // The first node comes back and rejoins. Then the node the components moved to stops
    // while `waits` has a retry pending in its delay queue (a quorum queue too) and `gated`
    // runs: the retry still arrives, and `gated`, failing only after its worker reconnected
    // elsewhere, publishes its retry through the new connection (the old one is gone for good).
    cluster.start_node(0).await;
    let flaky_run = stack.trigger("flaky", json!({})).await;
    stack.wait_for_task_state("flaky", &flaky_run, "waits", "up_for_retry").await;
    stack.wait_for_task_state("flaky", &flaky_run, "gated", "running").await;
    cluster.stop_node(1).await;
    stack
        .eventually("the worker to reconnect to another node again", || async {
            (worker.output().matches("reconnected to RabbitMQ").count() >= 2).then_some(())
        })
        .await;
    std::fs::write(&go, "").expect("releasing `gated`");
    let second_run = stack.trigger("cluster", json!({})).await;
    assert_eq!(stack.wait_for_run("cluster", &second_run).await, "success");
    assert_eq!(stack.wait_for_run("flaky", &flaky_run).await, "success");
    for task in ["waits", "gated"] {
        let ti = stack.task_instance("flaky", &flaky_run, task).await;
        assert_eq!(ti["try_number"], 2, "the retry of {task} ran once: {ti}");
    }
    let done = ledger.completions();
    for task in ["first", "slow", "last"] {
        assert_eq!(done.get(task), Some(&2), "{task} finished once per run: {done:?}");
    }
    for ti in stack.task_instances("cluster", &second_run).await {
        assert_eq!(ti["try_number"], 1, "{ti}");
    }

    // Two of three nodes down: no majority, so nothing moves, and nothing is lost;
    // when a second node is back the run completes, each task once.
    cluster.stop_node(2).await;
    let third_run = stack.trigger("cluster", json!({})).await;
    cluster.start_node(1).await;
    assert_eq!(stack.wait_for_run("cluster", &third_run).await, "success");
    let done = ledger.completions();
    for task in ["first", "slow", "last"] {
        assert_eq!(done.get(task), Some(&3), "{task} finished once per run: {done:?}");
    }
    assert!(scheduler.output().contains("connected to RabbitMQ"), "{}", scheduler.output());
    let _ = std::fs::remove_dir_all(&dir);
    stack.stop().await;
}
