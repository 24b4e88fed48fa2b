//! At-least-once delivery, at-most-once execution per try: duplicates are
//! dropped, garbage is dead-lettered, and neither stops the worker.

use gust_shared::{
    amqp::Topology,
    dag::{OperatorSpec, RetryPolicy},
    message::{TaskMessage, SCHEMA_VERSION},
};
use gust_tests::{tap::Tap, StackOptions, TestStack};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redelivered_message_for_a_finished_try_is_acked_without_running() {
    let marker = std::env::temp_dir().join(format!("gust-once-{}", uuid::Uuid::new_v4()));
    let dag = format!(
        "dag_id: once\ntasks:\n  - {{id: count, operator: bash, command: 'echo ran >> {}'}}\n",
        marker.display()
    );
    let options = StackOptions { worker_concurrency: 1, ..StackOptions::default() };
    let stack = TestStack::spawn_with(&[("once.yaml", &dag)], options).await;
    let tap = Tap::start(&stack.settings, "default").await;
    let first = stack.trigger("once", json!({})).await;
    assert_eq!(stack.wait_for_run("once", &first).await, "success");
    let ti = stack.task_instances("once", &first).await.remove(0);
    let log_before = stack.log_text("once", &first, "count", 1).await;

    // A copy of the finished try's message, as a broker redelivery would bring it.
    let duplicate = TaskMessage {
        version: SCHEMA_VERSION,
        ti_id: ti["id"].as_str().unwrap().parse().unwrap(),
        dag_id: "once".into(),
        run_id: first.clone(),
        task_id: "count".into(),
        map_index: -1,
        map_item: None,
        try_number: 1,
        logical_date: None,
        queue: "default".into(),
        operator: OperatorSpec::Bash {
            command: format!("echo ran >> {}", marker.display()),
            env: Default::default(),
            cwd: None,
            do_xcom_push: false,
        },
        execution_timeout_ms: None,
        retry: RetryPolicy { delay_ms: 1000, exponential: false, max_delay_ms: None },
        env: Default::default(),
        params: None,
        conf: None,
        first_poke_at: None,
        queued_at: None,
        outlets: Vec::new(),
    };
    stack.publish_raw("default", &duplicate.to_bytes()).await;
    // The single worker takes messages in order: once a later run is done, the duplicate was handled.
    let second = stack.trigger("once", json!({})).await;
    assert_eq!(stack.wait_for_run("once", &second).await, "success");

    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "ran\nran\n",
        "one execution per run, none for the duplicate"
    );
    assert_eq!(stack.log_text("once", &first, "count", 1).await, log_before);
    let (_, again) = stack.get(&format!("/api/v2/dags/once/dagRuns/{first}/taskInstances/count")).await;
    assert_eq!((again["state"].as_str(), again["try_number"].as_i64()), (Some("success"), Some(1)), "{again}");
    let topology = Topology::from_settings(&stack.settings.amqp);
    assert_eq!(stack.queue_depth(&topology.work_queue("default")).await, 0);
    // Acked and dropped, not dead-lettered: the dead queue stayed empty and nothing was recorded from it.
    assert_eq!(stack.queue_depth(&topology.dead_queue()).await, 0, "nothing waits in the dead queue");
    let (status, letters) = stack.get("/api/v2/gust/deadLetters").await;
    assert_eq!((status, &letters["total_entries"]), (200, &json!(0)), "no dead letter: {letters}");
    // The tap counts publishes, not runs: it saw the duplicate the claim dropped
    // (what lets chaos::three_schedulers_dispatch_every_try_exactly_once see a double dispatch).
    let key = (duplicate.ti_id, 1);
    stack
        .eventually("the tap to see both messages of the first try", || async {
            (tap.publishes().get(&key) == Some(&2)).then_some(())
        })
        .await;
    tap.close().await;
    let _ = std::fs::remove_file(marker);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn garbage_message_is_dead_lettered_and_the_worker_keeps_going() {
    let stack = TestStack::spawn(&[("ok.yaml", "dag_id: ok\ntasks:\n  - {id: a, operator: noop}\n")]).await;
    stack.wait_for_dag("ok").await;
    stack.publish_raw("default", b"\x00 this is not a task message").await;
    stack.publish_raw("default", br#"{"version": 99, "ti_id": "whatever"}"#).await;
    let orphan = TaskMessage {
        version: SCHEMA_VERSION,
        ti_id: uuid::Uuid::new_v4(),
        dag_id: "ok".into(),
        run_id: "manual__deleted".into(),
        task_id: "a".into(),
        map_index: -1,
        map_item: None,
        try_number: 1,
        logical_date: None,
        queue: "default".into(),
        operator: OperatorSpec::Noop,
        execution_timeout_ms: None,
        retry: RetryPolicy { delay_ms: 0, exponential: false, max_delay_ms: None },
        env: Default::default(),
        params: None,
        conf: None,
        first_poke_at: None,
        queued_at: None,
        outlets: Vec::new(),
    };
    stack.publish_raw("default", &orphan.to_bytes()).await;

    let letters = stack
        .eventually("the three poison messages listed as dead letters", || async {
            let (status, body) = stack.get("/api/v2/gust/deadLetters").await;
            (status == 200 && body["total_entries"] == 3).then_some(body)
        })
        .await;
    let mut reasons: Vec<&str> =
        letters["dead_letters"].as_array().unwrap().iter().map(|l| l["reason"].as_str().unwrap()).collect();
    reasons.sort();
    assert_eq!(reasons, vec!["malformed", "unknown_schema_version", "unknown_task_instance"], "{letters}");
    let run_id = stack.trigger("ok", json!({})).await;
    assert_eq!(stack.wait_for_run("ok", &run_id).await, "success");
    // The three went to the dead queue and were recorded from it; the good run's message did not follow them.
    let topology = Topology::from_settings(&stack.settings.amqp);
    assert_eq!(
        stack.queue_depth(&topology.dead_queue()).await,
        0,
        "the scheduler recorded and acked every dead letter"
    );
    assert_eq!(stack.queue_depth(&topology.work_queue("default")).await, 0, "nothing left on the work queue");
    let (_, after) = stack.get("/api/v2/gust/deadLetters").await;
    assert_eq!(after["total_entries"], 3, "the good run added no dead letter: {after}");
    stack.stop().await;
}
