//! A whole gust deployment for one measurement: a fresh database and queue
//! namespace, a temporary DAG folder, and the release binaries
//! (`gust-scheduler`, N × `gust-worker`, `gust-webapi`) as child processes.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    time::{Duration, Instant, SystemTime},
};

use anyhow::{bail, Context};
use gust_shared::{amqp, db};
use lapin::{options::QueueDeclareOptions, types::FieldTable};
use serde::Serialize;
use serde_json::json;

use crate::{
    cleanup,
    procs::{ChildProcess, Spawn},
    scenarios::Ctx,
};

/// How often run states are polled (a cheap indexed SELECT).
pub const POLL: Duration = Duration::from_millis(20);
/// Longest wait for the stack to come up (API answering, DAG stored, workers consuming).
const STARTUP_PATIENCE: Duration = Duration::from_secs(90);
/// Time each process gets to stop after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(20);
/// The queue every benchmark task goes to.
pub const QUEUE: &str = "default";

/// Slots of `default_pool` and `max_active_tasks` of every bench DAG: above any scenario's task count.
pub const BENCH_POOL_SLOTS: usize = 1_000_000;

/// The admin the webapi creates at start (`GUST__AUTH__ADMIN_USERNAME`) and the harness logs in as.
const BENCH_ADMIN: &str = "bench";

/// The three release binaries the harness runs.
#[derive(Debug, Clone, Serialize)]
pub struct Binaries {
    /// `target/release/gust-scheduler`.
    pub scheduler: PathBuf,
    /// `target/release/gust-worker`.
    pub worker: PathBuf,
    /// `target/release/gust-webapi`.
    pub webapi: PathBuf,
}

/// How to build what the harness runs.
pub const BUILD_HINT: &str = "cargo build --release -p gust-scheduler -p gust-worker -p gust-webapi";

impl Binaries {
    /// Finds the release binaries under the workspace's target folder (or
    /// `CARGO_TARGET_DIR`); fails naming the build command when one is missing.
    /// Returns warnings for binaries older than the sources they are built from.
    pub fn locate(workspace: &Path) -> anyhow::Result<(Binaries, Vec<String>)> {
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace.join("target"));
        let release = target.join("release");
        let bins = Binaries {
            scheduler: release.join("gust-scheduler"),
            worker: release.join("gust-worker"),
            webapi: release.join("gust-webapi"),
        };
        let mut warnings = Vec::new();
        let newest_source = newest_mtime(
            &["shared/src", "shared/migrations", "scheduler/src", "worker/src", "webapi/src", "Cargo.lock"]
                .map(|p| workspace.join(p)),
        );
        for path in [&bins.scheduler, &bins.worker, &bins.webapi] {
            let Ok(meta) = std::fs::metadata(path) else {
                bail!("{} is missing: build the release binaries first with `{BUILD_HINT}`", path.display());
            };
            if let (Ok(built), Some(source)) = (meta.modified(), newest_source) {
                if built < source {
                    warnings.push(format!(
                        "{} is older than the newest gust source file; rebuild with `{BUILD_HINT}` or the results describe old code",
                        path.display()
                    ));
                }
            }
        }
        Ok((bins, warnings))
    }
}

fn newest_mtime(paths: &[PathBuf]) -> Option<SystemTime> {
    let mut newest = None;
    let mut stack: Vec<PathBuf> = paths.to_vec();
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&path) else { continue };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        } else if let Ok(modified) = meta.modified() {
            newest = newest.max(Some(modified));
        }
    }
    newest
}

pub use gust_shared::db::with_database;

/// Opens one PostgreSQL connection, driven in the background.
pub async fn pg_connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connecting to {}", gust_shared::settings::redact_url(url)))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// Eight hex digits of a fresh UUID, for unique names.
pub fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

/// Times of a finished run, from its `dag_runs` row and its task instances (database clock).
#[derive(Debug, Clone)]
pub struct RunTimes {
    /// `end_date - queued_at` in seconds.
    pub total_s: f64,
    /// First task's `start_date - queued_at` in seconds.
    pub first_start_s: f64,
    /// Task instances in `success`.
    pub succeeded: i64,
    /// Last task's `queued_at - ` the run's `queued_at` in seconds: how long dispatching every task took.
    pub last_queued_s: f64,
    /// Median of `start_date - queued_at` over the tasks in milliseconds: how long a published task waited for a worker.
    pub queue_wait_p50_ms: f64,
    /// Median of `end_date - start_date` over the tasks in milliseconds: claim to recorded outcome on the worker.
    pub in_worker_p50_ms: f64,
}

/// A running gust stack.
pub struct GustStack {
    /// Queue namespace, `bench-<id>`.
    pub namespace: String,
    /// URL of the stack's own database.
    pub db_url: String,
    /// Temporary folder: `dags/` and the process logs.
    pub dir: PathBuf,
    /// Base URL of the webapi.
    pub api: String,
    /// HTTP client for the API; once the stack is up it sends the admin's bearer token.
    pub http: reqwest::Client,
    /// The admin's bearer token, from `POST /auth/token`.
    pub token: String,
    /// Connection to the stack's database.
    pub db: tokio_postgres::Client,
    /// The scheduler process.
    pub scheduler: Option<ChildProcess>,
    /// The worker processes.
    pub workers: Vec<ChildProcess>,
    /// When the workers were started.
    pub workers_started: Instant,
    webapi: Option<ChildProcess>,
    amqp_url: String,
    admin_password: String,
}

impl GustStack {
    /// Creates a stack with `dag_files` (file name, YAML), runs `body` on it
    /// and tears it down whatever happens. On failure the temporary folder
    /// with the logs is kept and named in the error.
    pub async fn with<T>(
        ctx: &Ctx,
        dag_files: &[(String, String)],
        body: impl AsyncFnOnce(&mut GustStack) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let mut stack = GustStack::create(ctx, dag_files).await?;
        let result = match stack.launch(ctx).await {
            Ok(()) => body(&mut stack).await,
            Err(e) => Err(e),
        };
        let keep = result.is_err() || ctx.keep_logs;
        let dir = stack.dir.clone();
        stack.teardown(keep).await;
        result.map_err(|e| e.context(format!("gust logs kept in {}", dir.display())))
    }

    /// Migrates a fresh database and writes the DAG folder.
    async fn create(ctx: &Ctx, dag_files: &[(String, String)]) -> anyhow::Result<GustStack> {
        let id = short_id();
        let namespace = format!("bench-{id}");
        let db_url = with_database(&ctx.db_base, &format!("gust_bench_{id}"));
        let dir = std::env::temp_dir().join(format!("gust-bench-{id}"));
        let dags = dir.join("dags");
        std::fs::create_dir_all(&dags).with_context(|| format!("creating {}", dags.display()))?;
        for (name, yaml) in dag_files {
            std::fs::write(dags.join(name), yaml).with_context(|| format!("writing DAG file {name}"))?;
        }
        cleanup::track_database(&db_url);
        let (queues, exchanges) = namespace_objects(&namespace, &[QUEUE]);
        cleanup::track_broker(&queues, &exchanges);
        if let Err(e) = db::migrate(&db_url).await {
            let _ = db::drop_database(&db_url).await;
            cleanup::untrack_database(&db_url);
            return Err(anyhow::Error::new(e).context("creating and migrating the benchmark database"));
        }
        let db = match pg_connect(&db_url).await {
            Ok(db) => db,
            Err(e) => {
                let _ = db::drop_database(&db_url).await;
                cleanup::untrack_database(&db_url);
                return Err(e);
            }
        };
        Ok(GustStack {
            namespace,
            db_url,
            dir,
            api: String::new(),
            http: reqwest::Client::new(),
            token: String::new(),
            db,
            scheduler: None,
            workers: Vec::new(),
            workers_started: Instant::now(),
            webapi: None,
            amqp_url: ctx.amqp_url.clone(),
            admin_password: format!("bench-{}", uuid::Uuid::new_v4().simple()),
        })
    }

    fn env(&self, ctx: &Ctx) -> Vec<(String, String)> {
        vec![
            ("GUST__DATABASE__URL".into(), self.db_url.clone()),
            ("GUST__AMQP__URL".into(), self.amqp_url.clone()),
            ("GUST__AMQP__NAMESPACE".into(), self.namespace.clone()),
            ("GUST__DAGS__FOLDER".into(), self.dir.join("dags").display().to_string()),
            ("GUST__SCHEDULER__RESCAN_INTERVAL".into(), "1s".into()),
            ("GUST__SCHEDULER__DAGS_ARE_PAUSED_AT_CREATION".into(), "false".into()),
            ("GUST__WORKER__CONCURRENCY".into(), ctx.concurrency.to_string()),
            ("GUST__WORKER__PREFETCH_MULTIPLIER".into(), ctx.prefetch_multiplier.to_string()),
            ("GUST__AUTH__ADMIN_USERNAME".into(), BENCH_ADMIN.into()),
            ("GUST__AUTH__ADMIN_PASSWORD".into(), self.admin_password.clone()),
            ("RUST_LOG".into(), "warn".into()),
        ]
    }

    /// Starts the webapi, the scheduler and the workers and waits until the
    /// API answers and every worker consumes the work queue.
    async fn launch(&mut self, ctx: &Ctx) -> anyhow::Result<()> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        self.api = format!("http://127.0.0.1:{port}");
        let mut env = self.env(ctx);
        env.push(("GUST__WEBAPI__BIND".into(), format!("127.0.0.1:{port}")));
        let spawn = |name: &'static str, program: &Path, env: Vec<(String, String)>| {
            ChildProcess::spawn(Spawn {
                name,
                program,
                args: vec![],
                env,
                cwd: None,
                log_dir: &self.dir,
                own_group: false,
            })
        };
        let webapi = spawn("webapi", &ctx.bins.webapi, env.clone())?;
        let scheduler_env = env.iter().chain(&ctx.scheduler_env).cloned().collect();
        let scheduler = spawn("scheduler", &ctx.bins.scheduler, scheduler_env)?;
        self.webapi = Some(webapi);
        self.scheduler = Some(scheduler);
        self.workers_started = Instant::now();
        for i in 0..ctx.workers {
            let name = format!("worker-{i}");
            let mut env = env.clone();
            env.push(("GUST__WORKER__NAME".into(), format!("bench-{name}")));
            let worker = ChildProcess::spawn(Spawn {
                name: &name,
                program: &ctx.bins.worker,
                args: vec![],
                env,
                cwd: None,
                log_dir: &self.dir,
                own_group: false,
            })?;
            self.workers.push(worker);
        }
        self.wait_for_api().await?;
        self.lift_default_pool().await?;
        self.wait_for_consumers(ctx.workers).await
    }

    /// Gives `default_pool` more slots than any scenario has tasks, so pools do not cap throughput.
    async fn lift_default_pool(&self) -> anyhow::Result<()> {
        let url = format!("{}/api/v2/pools/default_pool", self.api);
        let response = self.http.patch(&url).json(&json!({"slots": BENCH_POOL_SLOTS})).send().await?;
        if !response.status().is_success() {
            bail!("resizing default_pool through {url} failed: {} {}", response.status(), response.text().await?);
        }
        Ok(())
    }

    /// Fails when any gust process has exited.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        for process in self.webapi.iter_mut().chain(self.scheduler.iter_mut()).chain(self.workers.iter_mut()) {
            process.ensure_running()?;
        }
        Ok(())
    }

    /// Waits until the webapi answers a login, then sends that token with every request.
    async fn wait_for_api(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + STARTUP_PATIENCE;
        let url = format!("{}/auth/token", self.api);
        let login = json!({"username": BENCH_ADMIN, "password": self.admin_password});
        loop {
            self.ensure_running()?;
            if let Ok(response) = self.http.post(&url).json(&login).send().await {
                if response.status() == reqwest::StatusCode::CREATED {
                    let body: serde_json::Value = response.json().await?;
                    let token = body["access_token"].as_str().context("no access_token in the login response")?;
                    self.token = token.to_string();
                    self.http = authed_client(token)?;
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("the webapi did not answer {url} within {STARTUP_PATIENCE:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `workers` consumers are attached to the work queue.
    async fn wait_for_consumers(&mut self, workers: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + STARTUP_PATIENCE;
        let queue = amqp::Topology::new(&self.namespace).work_queue(QUEUE);
        let connection = amqp::connect(&self.amqp_url, "gust-bench-inspector").await?;
        let result = async {
            loop {
                self.ensure_running()?;
                let channel = connection.create_channel().await?;
                let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
                // A missing queue closes the channel; a fresh one is opened next time.
                if let Ok(q) = channel.queue_declare(queue.as_str().into(), passive, FieldTable::default()).await {
                    if q.consumer_count() as usize >= workers {
                        let _ = channel.close(200, "done".into()).await;
                        return Ok(());
                    }
                    let _ = channel.close(200, "done".into()).await;
                }
                if Instant::now() > deadline {
                    bail!("{workers} workers were not consuming {queue} within {STARTUP_PATIENCE:?}");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        .await;
        let _ = connection.close(200, "done".into()).await;
        result
    }

    /// Waits until the scheduler has stored `dag_id` in the `dags` table.
    pub async fn wait_for_dag(&mut self, dag_id: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + STARTUP_PATIENCE;
        loop {
            self.ensure_running()?;
            if self.db.query_opt("SELECT 1 FROM dags WHERE dag_id = $1", &[&dag_id]).await?.is_some() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "DAG {dag_id} was not in the dags table within {STARTUP_PATIENCE:?}; import errors: {:?}",
                    self.import_errors().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn import_errors(&self) -> Vec<String> {
        match self.db.query("SELECT filename || ': ' || stacktrace FROM import_errors", &[]).await {
            Ok(rows) => rows.iter().map(|r| r.get(0)).collect(),
            Err(e) => vec![format!("(could not read import_errors: {e})")],
        }
    }

    /// Triggers a run over HTTP; returns its `dag_run_id` and how long the POST took.
    pub async fn trigger(&self, dag_id: &str) -> anyhow::Result<(String, Duration)> {
        trigger(&self.http, &self.api, dag_id).await
    }

    /// Polls the run's state every [`POLL`] until it is `success` or
    /// `failed` (an error naming the task states) or `timeout` passes.
    pub async fn wait_for_run(&mut self, dag_id: &str, run_id: &str, timeout: Duration) -> anyhow::Result<RunTimes> {
        let deadline = Instant::now() + timeout;
        let statement = self.db.prepare("SELECT state FROM dag_runs WHERE dag_id = $1 AND run_id = $2").await?;
        loop {
            let state: Option<String> = self.db.query_opt(&statement, &[&dag_id, &run_id]).await?.map(|r| r.get(0));
            match state.as_deref() {
                Some("success") => break,
                Some("failed") => {
                    bail!("run {dag_id}/{run_id} failed; task states: {}", self.task_states(dag_id, run_id).await)
                }
                _ => {}
            }
            self.ensure_running()?;
            if Instant::now() > deadline {
                bail!(
                    "run {dag_id}/{run_id} did not finish within {timeout:?} (state {state:?}); task states: {}",
                    self.task_states(dag_id, run_id).await
                );
            }
            tokio::time::sleep(POLL).await;
        }
        let row = self
            .db
            .query_one(
                "SELECT extract(epoch FROM r.end_date - r.queued_at)::float8, \
                     extract(epoch FROM (SELECT min(start_date) FROM task_instances WHERE run_pk = r.id) - r.queued_at)::float8, \
                     (SELECT count(*) FROM task_instances WHERE run_pk = r.id AND state = 'success'), \
                     extract(epoch FROM (SELECT max(queued_at) FROM task_instances WHERE run_pk = r.id) - r.queued_at)::float8, \
                     (SELECT 1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM start_date - queued_at)) \
                      FROM task_instances WHERE run_pk = r.id)::float8, \
                     (SELECT 1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM end_date - start_date)) \
                      FROM task_instances WHERE run_pk = r.id)::float8 \
                 FROM dag_runs r WHERE r.dag_id = $1 AND r.run_id = $2",
                &[&dag_id, &run_id],
            )
            .await?;
        Ok(RunTimes {
            total_s: row.get(0),
            first_start_s: row.get(1),
            succeeded: row.get(2),
            last_queued_s: row.get(3),
            queue_wait_p50_ms: row.get(4),
            in_worker_p50_ms: row.get(5),
        })
    }

    /// `state=count` of a run's task instances, for error messages.
    pub async fn task_states(&self, dag_id: &str, run_id: &str) -> String {
        let rows = self
            .db
            .query(
                "SELECT state, count(*) FROM task_instances WHERE dag_id = $1 AND run_id = $2 GROUP BY state ORDER BY state",
                &[&dag_id, &run_id],
            )
            .await;
        match rows {
            Ok(rows) if rows.is_empty() => "no task instances".into(),
            Ok(rows) => rows
                .iter()
                .map(|r| format!("{}={}", r.get::<_, String>(0), r.get::<_, i64>(1)))
                .collect::<Vec<_>>()
                .join(", "),
            Err(e) => format!("(could not read: {e})"),
        }
    }

    /// Pid of the scheduler.
    pub fn scheduler_pid(&self) -> i32 {
        self.scheduler.as_ref().map(ChildProcess::pid).unwrap_or(-1)
    }

    /// Name and log file of every gust process of the stack: scheduler, workers, webapi.
    pub fn process_logs(&self) -> Vec<(String, PathBuf)> {
        self.scheduler
            .iter()
            .chain(&self.workers)
            .chain(self.webapi.iter())
            .map(|process| (process.name.clone(), process.log.clone()))
            .collect()
    }

    /// Name and pid of every gust process of the stack: scheduler, workers, webapi.
    pub fn processes(&self) -> Vec<(String, i32)> {
        self.scheduler
            .iter()
            .chain(&self.workers)
            .chain(self.webapi.iter())
            .map(|process| (process.name.clone(), process.pid()))
            .collect()
    }

    /// Stops every process (workers first), deletes the namespace's queues
    /// and exchanges and the database, and the temporary folder unless `keep_dir`.
    async fn teardown(mut self, keep_dir: bool) {
        let workers = std::mem::take(&mut self.workers);
        futures_util::future::join_all(workers.into_iter().map(|w| w.terminate(STOP_GRACE))).await;
        for process in [self.scheduler.take(), self.webapi.take()].into_iter().flatten() {
            process.terminate(STOP_GRACE).await;
        }
        delete_namespace(&self.amqp_url, &self.namespace, &[QUEUE]).await;
        drop(self.db);
        match db::drop_database(&self.db_url).await {
            Ok(()) => cleanup::untrack_database(&self.db_url),
            Err(e) => eprintln!("warning: dropping {}: {e}", gust_shared::settings::redact_url(&self.db_url)),
        }
        if !keep_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// An HTTP client that sends `token` as bearer with every request.
pub fn authed_client(token: &str) -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse()?);
    Ok(reqwest::Client::builder().default_headers(headers).build()?)
}

/// Triggers a run of `dag_id` through `POST /api/v2/dags/{dag_id}/dagRuns`.
pub async fn trigger(http: &reqwest::Client, api: &str, dag_id: &str) -> anyhow::Result<(String, Duration)> {
    let started = Instant::now();
    let response = http
        .post(format!("{api}/api/v2/dags/{dag_id}/dagRuns"))
        .json(&json!({"conf": {}}))
        .send()
        .await
        .with_context(|| format!("triggering {dag_id}"))?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let elapsed = started.elapsed();
    if status != reqwest::StatusCode::OK {
        bail!("triggering {dag_id}: HTTP {status}: {body}");
    }
    let run_id =
        body["dag_run_id"].as_str().with_context(|| format!("no dag_run_id in the trigger response {body}"))?;
    Ok((run_id.to_string(), elapsed))
}

/// The work queues, dead queue and exchanges gust declares in `namespace`
/// for `queues` (delay queues expire by themselves).
fn namespace_objects(namespace: &str, queues: &[&str]) -> (Vec<String>, Vec<String>) {
    let topology = amqp::Topology::new(namespace);
    let mut names: Vec<String> = queues.iter().map(|q| topology.work_queue(q)).collect();
    names.push(topology.dead_queue());
    (names, vec![topology.tasks_exchange(), topology.delay_exchange()])
}

/// Deletes the work queues, the dead queue and the exchanges of a namespace.
pub async fn delete_namespace(amqp_url: &str, namespace: &str, queues: &[&str]) {
    let (queues, exchanges) = namespace_objects(namespace, queues);
    cleanup::delete_broker_objects(amqp_url, &queues, &exchanges).await;
    cleanup::untrack_broker(&queues, &exchanges);
}
