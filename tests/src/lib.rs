//! Test helpers shared by every cross-component test: spawn a whole gust
//! stack (scheduler, workers, webapi) in-process against the real
//! PostgreSQL and RabbitMQ, each stack in its own database and its own
//! queue namespace, and drive it over HTTP like a user would.

pub mod airflow_api;
pub mod api;
pub mod browser;
pub mod database;
pub mod ledger;
pub mod metrics;
pub mod netns;
pub mod postgres_servers;
pub mod processes;
pub mod python;
pub mod rabbitmq_cluster;
pub mod tap;
pub mod test_ca;
pub mod ui;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use deadpool_postgres::Pool;
use gust_shared::{amqp, db, settings::Settings};
use lapin::{
    options::{
        BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions, QueueDeclareOptions, QueueDeleteOptions,
        QueuePurgeOptions,
    },
    types::FieldTable,
    BasicProperties,
};
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Longest a helper waits for something to happen before failing the test
/// (a hang guard, not a timing assertion).
pub const PATIENCE: Duration = Duration::from_secs(90);

/// A bound on a polling loop that does more than [`TestStack::eventually`]
/// can (tracks a maximum, restarts a process): call [`Deadline::check`] on
/// every round; it fails the test once [`PATIENCE`] has passed, so a wait
/// that never ends fails instead of hanging CI.
pub struct Deadline {
    at: tokio::time::Instant,
    what: String,
}

impl Deadline {
    /// [`PATIENCE`] from now, for waiting for `what`.
    pub fn new(what: impl Into<String>) -> Deadline {
        Deadline { at: tokio::time::Instant::now() + PATIENCE, what: what.into() }
    }

    /// Fails the test when the deadline has passed.
    #[track_caller]
    pub fn check(&self) {
        assert!(tokio::time::Instant::now() < self.at, "gave up waiting for {} after {PATIENCE:?}", self.what);
    }
}

/// The admin every test stack creates from its settings and whose token its HTTP client sends.
pub const ADMIN_USER: &str = "admin";

/// The password of [`ADMIN_USER`].
pub const ADMIN_PASSWORD: &str = "admin-password";

/// How to shape a test stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Number of workers to start.
    pub workers: usize,
    /// Tasks each worker runs at once.
    pub worker_concurrency: usize,
    /// Queues each worker consumes.
    pub queues: Vec<String>,
    /// Start the scheduler and workers inside the test process; when false
    /// the test starts them as child processes with [`TestStack::start_process`].
    pub in_process_engine: bool,
    /// The workers' plugin path (folders with `gust-op-<name>` custom operators).
    pub plugin_path: Vec<PathBuf>,
    /// The scheduler's `task_queued_timeout`, when not the default (10 minutes).
    pub task_queued_timeout: Option<Duration>,
    /// The scheduler's periodic rescan of its DAG sources, when not the tests' 500 ms.
    pub rescan_interval: Option<Duration>,
    /// The scheduler's `dags_are_paused_at_creation`, when not the tests' `false`.
    pub dags_are_paused_at_creation: Option<bool>,
    /// The PostgreSQL server URL to make the stack's database on, when not the machine's
    /// (e.g. [`postgres_servers::PostgresReplicaPair::server_url`]).
    pub database_server: Option<String>,
    /// `GUST__AMQP__URL` of every component, when not the machine's broker
    /// (e.g. [`rabbitmq_cluster::RabbitCluster::urls`]).
    pub amqp_url: Option<String>,
    /// `GUST__AMQP__TLS_CA_FILE` of every component (a [`test_ca::TestCa`] for `amqps://`).
    pub amqp_tls_ca_file: Option<PathBuf>,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            workers: 1,
            worker_concurrency: 4,
            queues: vec!["default".into()],
            in_process_engine: true,
            plugin_path: Vec::new(),
            task_queued_timeout: None,
            rescan_interval: None,
            dags_are_paused_at_creation: None,
            database_server: None,
            amqp_url: None,
            amqp_tls_ca_file: None,
        }
    }
}

/// A running gust stack with its own database, namespace and DAG folder.
pub struct TestStack {
    /// The settings every component was started with.
    pub settings: Settings,
    /// Base URL of the webapi, e.g. `http://127.0.0.1:41234`.
    pub api: String,
    /// HTTP client for the API; it sends the admin's bearer token.
    pub http: reqwest::Client,
    /// The admin's bearer token.
    pub token: String,
    /// Pool on the stack's database, for checks the API does not expose.
    pub pool: Pool,
    /// The DAG folder the scheduler watches.
    pub dags_dir: PathBuf,
    workers: usize,
    stop: CancellationToken,
    engine_stop: CancellationToken,
    components: Vec<(String, JoinHandle<Result<(), String>>)>,
}

type Component = (String, JoinHandle<Result<(), String>>);

/// Starts the scheduler and `workers` workers, stopped by `stop`.
fn start_engine(settings: &Settings, workers: usize, stop: &CancellationToken) -> Vec<Component> {
    let mut components = Vec::new();
    let (s, token) = (settings.clone(), stop.clone());
    components.push((
        "scheduler".to_string(),
        tokio::spawn(async move { gust_scheduler::run(s, token.cancelled_owned()).await.map_err(|e| e.to_string()) }),
    ));
    for i in 0..workers {
        let mut s = settings.clone();
        s.worker.name = Some(format!("worker-{i}"));
        let token = stop.clone();
        components.push((
            format!("worker-{i}"),
            tokio::spawn(async move { gust_worker::run(s, token.cancelled_owned()).await.map_err(|e| e.to_string()) }),
        ));
    }
    components
}

/// Waits for components to stop; fails the test if one failed or hangs.
async fn join_all(components: Vec<Component>) {
    for (name, handle) in components {
        match tokio::time::timeout(PATIENCE, handle).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => panic!("{name} failed: {e}"),
            Ok(Err(e)) => panic!("{name} panicked: {e}"),
            Err(_) => panic!("{name} did not stop within {PATIENCE:?}"),
        }
    }
}

/// Logs in at `POST {api}/auth/token` and returns the access token.
pub async fn login(api: &str, username: &str, password: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{api}/auth/token"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .expect("POST /auth/token");
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 201, "logging in as {username}: {body}");
    body["access_token"].as_str().expect("access_token in the token response").to_string()
}

/// Settings for a stack of its own: a fresh migrated database
/// ([`database::isolated`], handed over: the caller drops it, as
/// [`TestStack::stop`] does) and a fresh queue namespace, with short timers.
/// Fails loudly, saying how to start them, when PostgreSQL or RabbitMQ is down.
pub async fn isolated_settings() -> Settings {
    let (settings, pool) = isolated_settings_and_pool(&StackOptions::default()).await;
    pool.close();
    settings
}

/// [`isolated_settings`] and a pool on its database, on the options' database server and
/// broker when given instead of the machine's services.
async fn isolated_settings_and_pool(options: &StackOptions) -> (Settings, Pool) {
    let database = match options.database_server.as_deref() {
        Some(server) => database::isolated_on(server).await,
        None => database::isolated().await,
    };
    let id = uuid::Uuid::new_v4().simple().to_string();
    let mut settings = Settings::default();
    settings.database.url = database.url.clone();
    settings.database.pool_size = 8;
    if let Some(url) = options.amqp_url.clone().or_else(|| std::env::var("GUST__AMQP__URL").ok()) {
        settings.amqp.url = url;
    }
    settings.amqp.tls_ca_file = options.amqp_tls_ca_file.clone();
    settings.amqp.namespace = format!("gust-test-{}", &id[..16]);
    settings.scheduler.rescan_interval = Duration::from_millis(500);
    settings.scheduler.safety_interval = Duration::from_secs(2);
    settings.worker.kill_grace = Duration::from_secs(2);
    settings.worker.heartbeat_interval = Duration::from_millis(300);
    settings.worker.takeover_after = Duration::from_millis(1500);
    settings.worker.shutdown_grace = Duration::from_secs(5);
    settings.scheduler.zombie_threshold = Duration::from_secs(3);
    // Test DAGs run as soon as they are stored; the tests of pausing at creation set it back.
    settings.scheduler.dags_are_paused_at_creation = false;
    settings.auth.jwt_secret = Some(format!("{id}{id}"));
    settings.auth.admin_username = Some(ADMIN_USER.into());
    settings.auth.admin_password = Some(ADMIN_PASSWORD.into());
    // As in production: every component has the key that encrypts connection secrets.
    settings.secrets.key = Some(gust_shared::secrets::Secrets::generate_key());
    let settings = settings.validated().expect("test settings are valid");
    if let Err(e) = amqp::connect_to(&settings.amqp, "gust-tests").await {
        panic!(
            "RabbitMQ is needed for this test and is not usable: {e}\n\
             start it with `GUST_CI_SERVICES_ONLY=1 bash .ci/run` or `rabbitmq-server -detached`, \
             or set GUST__AMQP__URL"
        );
    }
    let (_, pool) = database.keep();
    (settings, pool)
}

impl TestStack {
    /// Starts a stack with one worker, the given DAG files (name, YAML) in its folder.
    pub async fn spawn(dag_files: &[(&str, &str)]) -> TestStack {
        Self::spawn_with(dag_files, StackOptions::default()).await
    }

    /// Starts a stack shaped by `options`.
    pub async fn spawn_with(dag_files: &[(&str, &str)], options: StackOptions) -> TestStack {
        gust_shared::telemetry::init();
        let (mut settings, pool) = isolated_settings_and_pool(&options).await;
        let dags_dir = std::env::temp_dir().join(format!("{}-dags", settings.amqp.namespace));
        std::fs::create_dir_all(&dags_dir).expect("creating the DAG folder");
        for (name, yaml) in dag_files {
            std::fs::write(dags_dir.join(name), yaml).expect("writing a DAG file");
        }
        settings.dags.folder = dags_dir.clone();
        settings.worker.concurrency = options.worker_concurrency;
        settings.worker.queues = options.queues.clone();
        settings.worker.plugin_path = options.plugin_path.clone();
        if let Some(interval) = options.rescan_interval {
            settings.scheduler.rescan_interval = interval;
        }
        if let Some(paused) = options.dags_are_paused_at_creation {
            settings.scheduler.dags_are_paused_at_creation = paused;
        }
        if let Some(timeout) = options.task_queued_timeout {
            settings.scheduler.task_queued_timeout = timeout;
        }

        let stop = CancellationToken::new();
        let mut components = Vec::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding the webapi");
        let api = format!("http://{}", listener.local_addr().expect("webapi address"));
        gust_webapi::auth::bootstrap_users(&pool, &settings.auth).await.expect("creating the admin user");
        let state = gust_webapi::AppState::new(pool.clone())
            .with_auth(gust_webapi::auth::Auth::from_settings(&settings.auth))
            .with_secrets(settings.secrets.secrets().expect("the test key is a valid Fernet key"));
        let token = stop.clone();
        components.push((
            "webapi".to_string(),
            tokio::spawn(async move {
                gust_webapi::serve(listener, state, token.cancelled_owned()).await.map_err(|e| e.to_string())
            }),
        ));
        let engine_stop = stop.child_token();
        let workers = if options.in_process_engine { options.workers } else { 0 };
        if options.in_process_engine {
            components.extend(start_engine(&settings, workers, &engine_stop));
        }
        let token = login(&api, ADMIN_USER, ADMIN_PASSWORD).await;
        let mut headers = reqwest::header::HeaderMap::new();
        let bearer = format!("Bearer {token}").parse().expect("a token is a valid header value");
        headers.insert(reqwest::header::AUTHORIZATION, bearer);
        let http = reqwest::Client::builder().default_headers(headers).build().expect("building the HTTP client");
        TestStack { settings, api, http, token, pool, dags_dir, workers, stop, engine_stop, components }
    }

    /// Fails the test if a component already stopped (it should run until `stop`).
    pub fn assert_components_running(&self) {
        for (name, handle) in &self.components {
            assert!(!handle.is_finished(), "component {name} stopped early");
        }
    }

    /// `GET` an API path; returns the status and the JSON body (`null` when not JSON).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.http.get(format!("{}{path}", self.api)).send().await.expect("GET request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `GET` an API path as the holder of `token` (not the stack's admin); returns the status and the JSON body.
    pub async fn get_as(&self, token: &str, path: &str) -> (u16, Value) {
        let request = reqwest::Client::new().get(format!("{}{path}", self.api)).bearer_auth(token);
        let response = request.send().await.expect("GET request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Sends `method` with a JSON body to an API path; returns the status and JSON body.
    pub async fn send(&self, method: reqwest::Method, path: &str, body: &Value) -> (u16, Value) {
        let response =
            self.http.request(method, format!("{}{path}", self.api)).json(body).send().await.expect("API request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Waits until the scheduler has stored `dag_id` and the API shows it.
    pub async fn wait_for_dag(&self, dag_id: &str) -> Value {
        self.eventually(&format!("DAG {dag_id} to appear"), || async {
            let (status, body) = self.get(&format!("/api/v2/dags/{dag_id}")).await;
            (status == 200).then_some(body)
        })
        .await
    }

    /// Triggers a run over HTTP (as a user would) and returns its `dag_run_id`.
    pub async fn trigger(&self, dag_id: &str, conf: Value) -> String {
        self.wait_for_dag(dag_id).await;
        let (status, body) = self
            .send(
                reqwest::Method::POST,
                &format!("/api/v2/dags/{dag_id}/dagRuns"),
                &json!({"logical_date": null, "conf": conf}),
            )
            .await;
        assert_eq!(status, 200, "triggering {dag_id}: {body}");
        assert_eq!(body["state"], "queued", "a new run is queued: {body}");
        body["dag_run_id"].as_str().expect("dag_run_id in the trigger response").to_string()
    }

    /// Waits until a run is `success` or `failed` and returns that state.
    pub async fn wait_for_run(&self, dag_id: &str, run_id: &str) -> String {
        let path = format!("/api/v2/dags/{dag_id}/dagRuns/{run_id}");
        let state = self
            .eventually_or(
                &format!("run {dag_id}/{run_id} to finish"),
                || async {
                    let (status, body) = self.get(&path).await;
                    let state = body["state"].as_str().unwrap_or_default().to_string();
                    (status == 200 && (state == "success" || state == "failed")).then_some(state)
                },
                || async { format!("task states: {:?}", self.task_states(dag_id, run_id).await) },
            )
            .await;
        state
    }

    /// `task_id → state` of a run, through the API (`none` for no status yet).
    pub async fn task_states(&self, dag_id: &str, run_id: &str) -> BTreeMap<String, String> {
        self.task_instances(dag_id, run_id)
            .await
            .iter()
            .map(|ti| {
                (ti["task_id"].as_str().unwrap_or("?").to_string(), ti["state"].as_str().unwrap_or("none").to_string())
            })
            .collect()
    }

    /// The task instance objects of a run, through the API.
    pub async fn task_instances(&self, dag_id: &str, run_id: &str) -> Vec<Value> {
        let (status, body) = self.get(&format!("/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")).await;
        assert_eq!(status, 200, "listing task instances: {body}");
        body["task_instances"].as_array().cloned().unwrap_or_default()
    }

    /// The text of one try's log, through the API.
    pub async fn log_text(&self, dag_id: &str, run_id: &str, task_id: &str, try_number: u32) -> String {
        let path = format!(
            "/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}?full_content=true"
        );
        let (status, body) = self.get(&path).await;
        assert_eq!(status, 200, "reading the log: {body}");
        body["content"]
            .as_array()
            .map(|lines| lines.iter().filter_map(|l| l["event"].as_str()).collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }

    /// Polls `check` until it yields a value; fails the test after [`PATIENCE`].
    pub async fn eventually<T, F, Fut>(&self, what: &str, check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        self.eventually_or(what, check, || async { String::new() }).await
    }

    async fn eventually_or<T, F, Fut, D, DFut>(&self, what: &str, mut check: F, describe: D) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
        D: FnOnce() -> DFut,
        DFut: std::future::Future<Output = String>,
    {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Some(value) = check().await {
                return value;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("gave up waiting for {what} after {PATIENCE:?}; {}", describe().await);
            }
            self.assert_components_running();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Publishes a raw body to the stack's tasks exchange with routing key `queue`, confirmed.
    ///
    /// Declares the work queue of `queue` first, as a worker does, so the
    /// message is routed even when no worker has declared it yet.
    pub async fn publish_raw(&self, queue: &str, body: &[u8]) {
        let connection =
            amqp::connect_to(&self.settings.amqp, "gust-tests-publisher").await.expect("connecting to RabbitMQ");
        let channel = connection.create_channel().await.expect("opening a channel");
        channel.confirm_select(ConfirmSelectOptions::default()).await.expect("confirm mode");
        let topology = amqp::Topology::from_settings(&self.settings.amqp);
        topology.declare_work_queue(&channel, queue).await.expect("declaring the work queue");
        let confirm = channel
            .basic_publish(
                topology.tasks_exchange().as_str().into(),
                queue.into(),
                BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() },
                body,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .expect("publishing")
            .await
            .expect("publisher confirm");
        assert!(matches!(confirm, lapin::Confirmation::Ack(None)), "the broker took the message: {confirm:?}");
        let _ = connection.close(200, "done".into()).await;
    }

    /// Messages ready in a queue of the stack's namespace (by full queue name).
    pub async fn queue_depth(&self, queue_name: &str) -> u32 {
        let connection =
            amqp::connect_to(&self.settings.amqp, "gust-tests-inspector").await.expect("connecting to RabbitMQ");
        let channel = connection.create_channel().await.expect("opening a channel");
        let queue = channel
            .queue_declare(
                queue_name.into(),
                QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() },
                FieldTable::default(),
            )
            .await
            .expect("inspecting the queue");
        let _ = connection.close(200, "done".into()).await;
        queue.message_count()
    }

    /// Deletes every ready message of a queue of the stack's namespace (by full
    /// queue name), as a broker that lost its data would; returns how many.
    pub async fn purge_queue(&self, queue_name: &str) -> u32 {
        let connection =
            amqp::connect_to(&self.settings.amqp, "gust-tests-purger").await.expect("connecting to RabbitMQ");
        let channel = connection.create_channel().await.expect("opening a channel");
        let purged =
            channel.queue_purge(queue_name.into(), QueuePurgeOptions::default()).await.expect("purging the queue");
        let _ = connection.close(200, "done".into()).await;
        purged
    }

    /// Starts `gust-scheduler` or `gust-worker` as a child process on this stack's settings.
    pub fn start_process(&self, binary: &str, name: &str) -> processes::Process {
        processes::Process::start(binary, name, &self.settings, &self.dags_dir)
    }

    /// Like [`Self::start_process`], with settings changed by `adjust` first.
    pub fn start_process_with(
        &self,
        binary: &str,
        name: &str,
        adjust: impl FnOnce(&mut Settings),
    ) -> processes::Process {
        let mut settings = self.settings.clone();
        adjust(&mut settings);
        processes::Process::start(binary, name, &settings, &self.dags_dir)
    }

    /// The task instance object of one task of a run, through the API.
    pub async fn task_instance(&self, dag_id: &str, run_id: &str, task_id: &str) -> Value {
        let (status, body) = self.get(&format!("/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")).await;
        assert_eq!(status, 200, "reading task instance {task_id}: {body}");
        body
    }

    /// Waits until a task of a run is in `state`; returns its task instance object.
    pub async fn wait_for_task_state(&self, dag_id: &str, run_id: &str, task_id: &str, state: &str) -> Value {
        self.eventually(&format!("task {task_id} to be {state}"), || async {
            let (status, body) =
                self.get(&format!("/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")).await;
            (status == 200 && body["state"] == state).then_some(body)
        })
        .await
    }

    /// Most runs of `dag_id` seen `running` at once (only those of `backfill_id`
    /// when given), polling the committed state every 20 ms until `done`.
    ///
    /// Counts what the database says is running, not the runs' recorded
    /// `start_date`/`end_date`: those are `now()`, the start of the transaction
    /// that wrote them, which can be well before its commit (a run start waits
    /// for the DAG's run-start lock), so spans from them overlap when the runs did not.
    pub async fn most_running_until<F, Fut>(&self, dag_id: &str, backfill_id: Option<i64>, mut done: F) -> i64
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let client = self.pool.get().await.expect("a database connection");
        let deadline = Deadline::new(format!("the runs of {dag_id} to finish"));
        let mut most = 0;
        while !done().await {
            deadline.check();
            let row = client
                .query_one(
                    "SELECT count(*) FROM dag_runs WHERE dag_id = $1 AND state = 'running' \
                     AND ($2::bigint IS NULL OR backfill_id = $2)",
                    &[&dag_id, &backfill_id],
                )
                .await
                .expect("counting running runs");
            most = most.max(row.get::<_, i64>(0));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        most
    }

    /// Makes the stack's own database a connection from the workers' environment
    /// (`GUST_CONN_<ID>`, an id unique to this stack starting with `prefix`); returns its id.
    pub fn database_as_env_connection(&self, prefix: &str) -> String {
        let conn_id = format!("{prefix}_{}", self.settings.amqp.namespace.replace('-', "_"));
        std::env::set_var(format!("GUST_CONN_{}", conn_id.to_ascii_uppercase()), &self.settings.database.url);
        conn_id
    }

    /// Path of a file in the DAG folder.
    pub fn dag_path(&self, name: &str) -> PathBuf {
        self.dags_dir.join(name)
    }

    /// Stops the scheduler and every worker (the webapi keeps serving).
    pub async fn stop_engine(&mut self) {
        self.engine_stop.cancel();
        let (engine, rest): (Vec<_>, Vec<_>) = self.components.drain(..).partition(|(name, _)| name != "webapi");
        self.components = rest;
        join_all(engine).await;
    }

    /// Starts the scheduler and the workers again with the same settings.
    pub fn start_engine(&mut self) {
        self.engine_stop = self.stop.child_token();
        self.components.extend(start_engine(&self.settings, self.workers, &self.engine_stop));
    }

    /// Stops every component, then deletes the stack's queues, DAG folder and database.
    pub async fn stop(self) {
        self.stop.cancel();
        join_all(self.components).await;
        self.pool.close();
        delete_namespace(&self.settings).await;
        let _ = std::fs::remove_dir_all(&self.dags_dir);
        db::drop_database(&self.settings.database.url).await.expect("dropping the test database");
    }
}

/// Deletes the exchange and queues a test namespace declared.
async fn delete_namespace(settings: &Settings) {
    let Ok(connection) = amqp::connect_to(&settings.amqp, "gust-tests-cleanup").await else { return };
    let Ok(channel) = connection.create_channel().await else { return };
    let topology = amqp::Topology::new(&settings.amqp.namespace);
    let mut queues: Vec<String> = settings.worker.queues.iter().map(|q| topology.work_queue(q)).collect();
    queues.push(topology.dead_queue());
    for queue in queues {
        let _ = channel.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await;
    }
    let _ = channel.exchange_delete(topology.tasks_exchange().as_str().into(), ExchangeDeleteOptions::default()).await;
    let _ = connection.close(200, "done".into()).await;
}

/// A loopback `host:port` nothing listens on yet, for a component's own server (an ops server).
pub async fn free_address() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding a free port");
    listener.local_addr().expect("local address").to_string()
}

/// Writes `text` to `path`, for tests that change the DAG folder while the stack runs.
pub fn write_file(path: &Path, text: &str) {
    std::fs::write(path, text).expect("writing a file");
}
