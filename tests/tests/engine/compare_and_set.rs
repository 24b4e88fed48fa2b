//! The compare-and-set rules of the SQL that moves task instances and runs,
//! tested directly on a throwaway migrated database: no RabbitMQ, no daemons,
//! seconds. Every statement is run from every state and must move exactly
//! the states its transition in `shared/src/state.rs` names, to the states
//! it names; the named rules below are the ones the fault tolerance rests on.

use std::time::Duration;

use futures_util::StreamExt;
use gust_shared::{
    dag::parse_dag_file,
    db::{
        self,
        runs::{self, NewRun},
        signals::Signal,
        task_instances::{
            dispatch, repair, run_progress,
            sweeps::{self, LostTry},
            try_end::TryOutcome,
            worker_tries::{self, Claim},
        },
    },
    state::{RunState, RunTransition, TaskState, TaskTransition, ALL_RUN_STATES, ALL_TASK_STATES},
};
use gust_tests::database::{self, TestDatabase};
use serde_json::json;
use tokio_postgres::AsyncMessage;
use uuid::Uuid;

const DAG: &str = r#"
dag_id: cas
tasks:
  - id: t
    operator: noop
"#;

/// A migrated database with DAG `cas` and one running run of it.
struct Fixture {
    database: TestDatabase,
    run_pk: i64,
}

/// A task instance as the tests read it back.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    state: TaskState,
    try_number: i32,
    max_tries: i32,
    hostname: Option<String>,
}

impl Fixture {
    async fn new() -> Fixture {
        let database = database::isolated().await;
        let client = database.pool.get().await.unwrap();
        let dag = parse_dag_file("dags/cas.yaml", DAG).expect("the test DAG parses");
        db::dags::upsert(&client, &dag, "dags/cas.yaml", "hash", DAG, false).await.unwrap();
        let version: i64 =
            client.query_one("SELECT id FROM dag_versions WHERE dag_id = 'cas'", &[]).await.unwrap().get(0);
        let conf = json!({});
        let run = runs::insert(
            &client,
            &NewRun {
                dag_id: "cas",
                run_id: "r",
                run_type: "manual",
                logical_date: None,
                data_interval: None,
                conf: &conf,
                dag_version_id: version,
                triggered_by: "test",
                triggering_user_name: None,
            },
        )
        .await
        .unwrap();
        assert!(runs::start(&client, run.id).await.unwrap());
        Fixture { run_pk: run.id, database }
    }

    async fn client(&self) -> deadpool_postgres::Object {
        self.database.pool.get().await.unwrap()
    }

    /// Inserts task instance `task_id` of the run in `state` at try `try_number`, last run by `worker-a`.
    async fn task_instance(&self, task_id: &str, state: TaskState, try_number: i32, map_index: i32) -> Uuid {
        self.client()
            .await
            .query_one(
                "INSERT INTO task_instances (run_pk, dag_id, run_id, task_id, map_index, operator, queue, state, \
                     try_number, max_tries, hostname, last_heartbeat_at, start_date) \
                 VALUES ($1, 'cas', 'r', $2, $3, 'noop', 'default', $4, $5, 1, 'worker-a', now(), now()) RETURNING id",
                &[&self.run_pk, &task_id, &map_index, &state.as_str(), &try_number],
            )
            .await
            .unwrap()
            .get(0)
    }

    async fn row(&self, id: Uuid) -> Row {
        let row = self
            .client()
            .await
            .query_one("SELECT state, try_number, max_tries, hostname FROM task_instances WHERE id = $1", &[&id])
            .await
            .unwrap();
        Row {
            state: TaskState::parse(row.get(0)).unwrap(),
            try_number: row.get(1),
            max_tries: row.get(2),
            hostname: row.get(3),
        }
    }

    async fn run_state(&self) -> RunState {
        let state: String = self
            .client()
            .await
            .query_one("SELECT state FROM dag_runs WHERE id = $1", &[&self.run_pk])
            .await
            .unwrap()
            .get(0);
        RunState::parse(&state).unwrap()
    }

    async fn set_run_state(&self, state: RunState) {
        self.client()
            .await
            .execute("UPDATE dag_runs SET state = $2 WHERE id = $1", &[&self.run_pk, &state.as_str()])
            .await
            .unwrap();
    }
}

/// How a worker reports a try whose process exited with `code` (retryable, retried after a minute).
fn exited(code: i32) -> TryOutcome<'static> {
    TryOutcome {
        state: if code == 0 { TaskState::Success } else { TaskState::Failed },
        exit_code: Some(code),
        failure_reason: (code != 0).then_some("non-zero exit code"),
        retry_delay_ms: 60_000,
        retryable: true,
    }
}

/// One statement that performs a transition, as its caller uses it.
#[derive(Debug, Clone, Copy)]
enum Statement {
    Apply(TaskTransition),
    ExpandMapped,
    FailUnexpandable,
    TakeForDispatch,
    FailUnrenderable,
    Claim,
    ClaimRetry,
    Reschedule,
    GroupCommitClaim,
    GroupCommitSuccess,
    FinishFailed,
    TakeOver,
    HandBack,
    FailZombie,
    FailUndeliverable,
    FailQueuedTimeout,
    Clear,
    Mark(TaskTransition),
}

impl Statement {
    /// Every statement with the transitions it performs (the state it finds picks one).
    fn all() -> Vec<(Statement, &'static [TaskTransition])> {
        use TaskTransition as T;
        vec![
            (Statement::Apply(T::Schedule), &[T::Schedule]),
            (Statement::Apply(T::Skip), &[T::Skip]),
            (Statement::Apply(T::UpstreamFail), &[T::UpstreamFail]),
            (Statement::ExpandMapped, &[T::Expand]),
            (Statement::FailUnexpandable, &[T::FailUnexpandable]),
            (Statement::TakeForDispatch, &[T::Dispatch]),
            (Statement::FailUnrenderable, &[T::FailUnrenderable]),
            // The same try's message claims a dispatched try and a sensor's next poke alike.
            (Statement::Claim, &[T::Claim, T::ClaimReschedule]),
            (Statement::GroupCommitClaim, &[T::Claim]),
            (Statement::ClaimRetry, &[T::ClaimRetry]),
            (Statement::Reschedule, &[T::Reschedule]),
            (Statement::GroupCommitSuccess, &[T::Finish]),
            (Statement::FinishFailed, &[T::Finish]),
            (Statement::TakeOver, &[T::TakeOver]),
            (Statement::HandBack, &[T::HandBack]),
            (Statement::FailZombie, &[T::FailZombie]),
            (Statement::FailUndeliverable, &[T::FailUndeliverable]),
            (Statement::FailQueuedTimeout, &[T::FailQueuedTimeout]),
            (Statement::Clear, &[T::Clear]),
            (Statement::Mark(T::MarkSuccess), &[T::MarkSuccess]),
            (Statement::Mark(T::MarkFailed), &[T::MarkFailed]),
            (Statement::Mark(T::MarkSkipped), &[T::MarkSkipped]),
        ]
    }

    /// Runs the statement on task instance `id`, whose current try is `try_number`.
    async fn perform(self, fixture: &Fixture, id: Uuid, try_number: i32) {
        let mut client = fixture.client().await;
        let c = &client;
        match self {
            Statement::Apply(transition) => {
                run_progress::apply(c, &[id], transition).await.unwrap();
            }
            Statement::ExpandMapped => {
                run_progress::expand_mapped(c, id, &[json!("a"), json!("b")]).await.unwrap();
            }
            Statement::FailUnexpandable => {
                run_progress::fail_unexpandable(c, id, "not a list").await.unwrap();
            }
            Statement::TakeForDispatch => {
                let tx = client.transaction().await.unwrap();
                dispatch::take_for_dispatch(&tx, 10).await.unwrap();
                tx.commit().await.unwrap();
            }
            Statement::FailUnrenderable => {
                dispatch::fail_unrenderable(c, id, try_number, "bad template").await.unwrap();
            }
            Statement::Claim | Statement::ClaimRetry => {
                let message_try = if matches!(self, Statement::Claim) { try_number } else { try_number + 1 };
                let tx = client.transaction().await.unwrap();
                worker_tries::claim(&tx, id, message_try, "worker-b").await.unwrap();
                tx.commit().await.unwrap();
            }
            Statement::Reschedule => {
                worker_tries::reschedule(c, id, try_number, 1000).await.unwrap();
            }
            Statement::GroupCommitClaim => {
                worker_tries::claim_and_finish_many(c, &[(id, try_number)], &[], "worker-b").await.unwrap();
            }
            Statement::GroupCommitSuccess => {
                worker_tries::claim_and_finish_many(c, &[], &[(id, try_number, Some(0))], "worker-a").await.unwrap();
            }
            Statement::FinishFailed => {
                worker_tries::finish(c, id, try_number, &exited(1)).await.unwrap();
            }
            Statement::TakeOver => {
                worker_tries::take_over(c, id, try_number, "worker-b", "worker-a stopped heartbeating").await.unwrap();
            }
            Statement::HandBack => {
                worker_tries::hand_back(c, id, try_number).await.unwrap();
            }
            Statement::FailZombie => {
                let zombie = LostTry { id, try_number, hostname: Some("worker-a".into()) };
                sweeps::fail_zombie(c, &zombie, "worker-a stopped heartbeating", 1000).await.unwrap();
            }
            Statement::FailUndeliverable => {
                sweeps::fail_undeliverable(c, id, try_number, "delivery limit").await.unwrap();
            }
            Statement::FailQueuedTimeout => {
                let queued = LostTry { id, try_number, hostname: None };
                sweeps::fail_queued_timeout(c, &queued, "queued for too long", 1000).await.unwrap();
            }
            Statement::Clear => {
                repair::clear(c, &[id], &[1]).await.unwrap();
            }
            Statement::Mark(transition) => {
                repair::mark(c, &[id], transition).await.unwrap();
            }
        }
    }
}

#[tokio::test]
async fn every_statement_moves_exactly_the_states_its_transition_names() {
    let fixture = Fixture::new().await;
    let mut checked = 0;
    for (statement, transitions) in Statement::all() {
        for state in ALL_TASK_STATES {
            // map_index -1: an unmapped task, or a mapped task's placeholder for the expansion statements.
            let id = fixture.task_instance("t", state, 1, -1).await;
            let before = fixture.row(id).await;
            statement.perform(&fixture, id, 1).await;
            let after = fixture.row(id).await;
            if let Some(transition) = transitions.iter().find(|t| t.moves(state)) {
                assert!(
                    transition.to().contains(&after.state),
                    "{statement:?} ({transition:?}) moved `{state}` to `{}`, the table says {:?}",
                    after.state,
                    transition.to()
                );
                assert!(
                    after != before,
                    "{statement:?} ({transition:?}) left `{state}` unchanged; the table says it moves it"
                );
            } else {
                assert_eq!(after, before, "{statement:?} ({transitions:?}) changed a task instance that was `{state}`");
            }
            fixture
                .client()
                .await
                .execute("DELETE FROM task_instances WHERE run_pk = $1", &[&fixture.run_pk])
                .await
                .unwrap();
            checked += 1;
        }
    }
    assert_eq!(checked, Statement::all().len() * ALL_TASK_STATES.len());
    let covered: Vec<TaskTransition> = Statement::all().into_iter().flat_map(|(_, t)| t.iter().copied()).collect();
    for transition in TaskTransition::ALL.into_iter().filter(|t| *t != TaskTransition::Create) {
        assert!(covered.contains(&transition), "no statement of {transition:?} is checked");
    }
}

#[tokio::test]
async fn a_new_run_creates_its_task_instances_none_or_scheduled_once() {
    let fixture = Fixture::new().await;
    let yaml = "dag_id: cas\ntasks:\n  - {id: a, operator: noop}\n  - {id: b, operator: noop, depends_on: [a]}\n";
    let dag = parse_dag_file("dags/cas.yaml", yaml).unwrap();
    let client = fixture.client().await;
    assert_eq!(run_progress::create_for_run(&client, fixture.run_pk, "cas", "r", &dag.tasks).await.unwrap(), 2);
    assert_eq!(run_progress::create_for_run(&client, fixture.run_pk, "cas", "r", &dag.tasks).await.unwrap(), 0);
    let states = run_progress::states_for_run(&client, fixture.run_pk).await.unwrap();
    let state_of = |task: &str| states.iter().find(|s| s.task_id == task).unwrap().state;
    assert_eq!((state_of("a"), state_of("b")), (TaskState::Scheduled, TaskState::None));
    assert!(
        TaskTransition::Create.to().contains(&state_of("a")) && TaskTransition::Create.to().contains(&state_of("b"))
    );
}

#[tokio::test]
async fn claiming_a_running_try_is_held_and_leaves_it_to_its_worker() {
    let fixture = Fixture::new().await;
    let id = fixture.task_instance("t", TaskState::Running, 1, -1).await;
    let mut client = fixture.client().await;
    let tx = client.transaction().await.unwrap();
    let claim = worker_tries::claim(&tx, id, 1, "worker-b").await.unwrap();
    tx.commit().await.unwrap();
    assert!(matches!(&claim, Claim::Held { try_number: 1, hostname: Some(h), .. } if h == "worker-a"), "{claim:?}");
    let row = fixture.row(id).await;
    assert_eq!((row.state, row.hostname.as_deref()), (TaskState::Running, Some("worker-a")));
}

#[tokio::test]
async fn claiming_a_finished_try_is_refused() {
    let fixture = Fixture::new().await;
    for finished in [TaskState::Success, TaskState::Failed, TaskState::Skipped, TaskState::UpstreamFailed] {
        let id = fixture.task_instance(finished.as_str(), finished, 1, -1).await;
        let mut client = fixture.client().await;
        let tx = client.transaction().await.unwrap();
        let claim = worker_tries::claim(&tx, id, 1, "worker-b").await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(claim, Claim::NotClaimable { state: finished, try_number: 1 });
        let claimed = worker_tries::claim_and_finish_many(&client, &[(id, 1)], &[], "worker-b").await.unwrap();
        assert!(claimed.is_empty(), "the group commit claimed a `{finished}` try");
        assert_eq!(fixture.row(id).await.state, finished);
    }
}

#[tokio::test]
async fn a_stale_try_cannot_finish() {
    let fixture = Fixture::new().await;
    let id = fixture.task_instance("t", TaskState::Running, 2, -1).await;
    let client = fixture.client().await;
    let success = exited(0);
    assert_eq!(worker_tries::finish(&client, id, 1, &success).await.unwrap(), None);
    let finished = worker_tries::claim_and_finish_many(&client, &[], &[(id, 1, Some(0))], "worker-a").await.unwrap();
    assert!(finished.is_empty(), "try 1 finished try 2");
    let row = fixture.row(id).await;
    assert_eq!((row.state, row.try_number), (TaskState::Running, 2));
    let history: i64 =
        client.query_one("SELECT count(*) FROM task_instance_tries WHERE ti_id = $1", &[&id]).await.unwrap().get(0);
    assert_eq!(history, 0, "a stale result wrote a history row");
}

#[tokio::test]
async fn a_takeover_raises_max_tries_and_closes_the_dead_workers_try_as_failed() {
    let fixture = Fixture::new().await;
    let id = fixture.task_instance("t", TaskState::Running, 1, -1).await;
    let client = fixture.client().await;
    let before = fixture.row(id).await;
    let new_try = worker_tries::take_over(&client, id, 1, "worker-b", "worker-a stopped heartbeating").await.unwrap();
    assert_eq!(new_try, Some(2));
    let after = fixture.row(id).await;
    assert_eq!(after.max_tries, before.max_tries + 1, "a dead worker must not use up a retry");
    assert_eq!((after.state, after.try_number, after.hostname.as_deref()), (TaskState::Running, 2, Some("worker-b")));
    let closed = client
        .query_one(
            "SELECT state, hostname, failure_reason FROM task_instance_tries WHERE ti_id = $1 AND try_number = 1",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(closed.get::<_, String>(0), "failed");
    assert_eq!(closed.get::<_, Option<String>>(1).as_deref(), Some("worker-a"));
    assert_eq!(closed.get::<_, Option<String>>(2).as_deref(), Some("worker-a stopped heartbeating"));
    assert_eq!(
        worker_tries::take_over(&client, id, 1, "worker-c", "again").await.unwrap(),
        None,
        "a second takeover of the same try must lose"
    );
}

#[tokio::test]
async fn a_manual_mark_beats_a_late_worker_result() {
    let fixture = Fixture::new().await;
    let id = fixture.task_instance("t", TaskState::Running, 1, -1).await;
    let client = fixture.client().await;
    assert_eq!(repair::mark(&client, &[id], TaskTransition::MarkFailed).await.unwrap(), vec![id]);
    let success = exited(0);
    assert_eq!(worker_tries::finish(&client, id, 1, &success).await.unwrap(), None);
    assert!(worker_tries::claim_and_finish_many(&client, &[], &[(id, 1, Some(0))], "worker-a")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(fixture.row(id).await.state, TaskState::Failed);
}

#[tokio::test]
async fn a_failed_try_with_retries_left_waits_up_for_retry_and_its_retry_is_claimed_as_the_next_try() {
    let fixture = Fixture::new().await;
    let id = fixture.task_instance("t", TaskState::Running, 1, -1).await;
    let mut client = fixture.client().await;
    let failed = exited(3);
    assert_eq!(worker_tries::finish(&client, id, 1, &failed).await.unwrap(), Some(TaskState::UpForRetry));
    let tx = client.transaction().await.unwrap();
    assert_eq!(
        worker_tries::claim(&tx, id, 1, "worker-b").await.unwrap(),
        Claim::NotClaimable { state: TaskState::UpForRetry, try_number: 1 }
    );
    assert_eq!(worker_tries::claim(&tx, id, 2, "worker-b").await.unwrap(), Claim::Claimed);
    tx.commit().await.unwrap();
    let row = fixture.row(id).await;
    assert_eq!((row.state, row.try_number, row.hostname.as_deref()), (TaskState::Running, 2, Some("worker-b")));
    assert_eq!(worker_tries::finish(&client, id, 2, &failed).await.unwrap(), Some(TaskState::Failed), "no tries left");
}

#[tokio::test]
async fn the_database_refuses_a_state_name_outside_the_state_machine() {
    let fixture = Fixture::new().await;
    let client = fixture.client().await;
    let checks = [
        ("task_instances_state_check", ALL_TASK_STATES.iter().map(|s| s.as_str()).collect::<Vec<_>>()),
        ("task_instance_tries_state_check", ALL_TASK_STATES.iter().map(|s| s.as_str()).collect()),
        ("dag_runs_state_check", ALL_RUN_STATES.iter().map(|s| s.as_str()).collect()),
    ];
    for (constraint, states) in checks {
        let definition: String = client
            .query_one("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = $1", &[&constraint])
            .await
            .unwrap_or_else(|e| panic!("constraint {constraint}: {e}"))
            .get(0);
        let quoted = definition.matches("'").count() / 2;
        assert_eq!(quoted, states.len(), "{constraint} lists other states than shared/src/state.rs: {definition}");
        for state in states {
            assert!(definition.contains(&format!("'{state}'")), "{constraint} lacks `{state}`: {definition}");
        }
    }
    let id = fixture.task_instance("t", TaskState::None, 0, -1).await;
    let error = client.execute("UPDATE task_instances SET state = 'bogus' WHERE id = $1", &[&id]).await.unwrap_err();
    assert_eq!(error.code(), Some(&tokio_postgres::error::SqlState::CHECK_VIOLATION), "{error}");
    let error =
        client.execute("UPDATE dag_runs SET state = 'paused' WHERE id = $1", &[&fixture.run_pk]).await.unwrap_err();
    assert_eq!(error.code(), Some(&tokio_postgres::error::SqlState::CHECK_VIOLATION), "{error}");
}

#[tokio::test]
async fn a_finished_try_notifies_the_schedulers_in_the_format_they_parse() {
    let fixture = Fixture::new().await;
    let (listener, mut connection) = db::connect_single(&fixture.database.url).await.unwrap();
    let (sender, mut received) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notification(n) = message {
                let _ = sender.send(Signal::parse(n.channel(), n.payload()));
            }
        }
    });
    listener.batch_execute(db::signals::LISTEN_ALL).await.unwrap();
    let grouped = fixture.task_instance("grouped", TaskState::Running, 1, -1).await;
    let single = fixture.task_instance("single", TaskState::Running, 1, -1).await;
    let client = fixture.client().await;
    worker_tries::claim_and_finish_many(&client, &[], &[(grouped, 1, Some(0))], "worker-a").await.unwrap();
    let failed = TryOutcome::failed_without_retry("broken");
    worker_tries::finish(&client, single, 1, &failed).await.unwrap();
    for task in ["grouped", "single"] {
        let signal = tokio::time::timeout(Duration::from_secs(10), received.recv())
            .await
            .unwrap_or_else(|_| panic!("no NOTIFY for `{task}` within 10 s"))
            .expect("the listener is alive");
        assert_eq!(signal, Some(Signal::TasksFinished { run_pk: fixture.run_pk, tasks: Some(vec![task.to_string()]) }));
    }
}

#[tokio::test]
async fn every_run_statement_moves_exactly_the_states_its_transition_names() {
    let fixture = Fixture::new().await;
    let client = fixture.client().await;
    for from in ALL_RUN_STATES {
        for transition in [RunTransition::Start, RunTransition::Finish, RunTransition::Requeue] {
            fixture.set_run_state(from).await;
            let moved = match transition {
                RunTransition::Start => runs::start(&client, fixture.run_pk).await.unwrap(),
                RunTransition::Finish => runs::finish(&client, fixture.run_pk, RunState::Success).await.unwrap(),
                _ => runs::requeue(&client, fixture.run_pk).await.unwrap(),
            };
            let after = fixture.run_state().await;
            assert_eq!(moved, transition.from().contains(&from), "{transition:?} from `{from}`");
            if moved {
                assert!(transition.to().contains(&after), "{transition:?} moved `{from}` to `{after}`");
            } else {
                assert_eq!(after, from, "{transition:?} changed a `{from}` run");
            }
        }
    }
}
