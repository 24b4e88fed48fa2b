//! gust-scheduler: keeps DAGs in step with the DAG folder, creates runs,
//! decides which tasks are ready and publishes them to RabbitMQ.
//!
//! The hot path is event-driven: a worker's commit NOTIFYs the run it
//! touched, and the scheduler moves that run on at once. Timers only rescan
//! the folder and sweep all live runs as a safety net. With
//! `GUST__RETENTION__MAX_AGE` set, a background task deletes expired runs
//! and records ([`gust_shared::retention::run_periodically`]).

mod args_schema;
mod asset_triggers;
mod broker;
mod dag_folder;
mod dead_letters;
mod dispatch;
pub mod error;
mod lost_tries;
pub mod metrics;
mod operator_warnings;
mod planner_statistics;
mod pool_warnings;
mod readiness;
mod run_scheduling;
mod timetable;
mod versions;
mod wakeups;

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use deadpool_postgres::Pool;
use gust_shared::{
    amqp::Topology,
    broker::Publish,
    db,
    health::{Health, OpsServer},
    settings::{host_name, Settings},
};
use tokio::time::{interval, MissedTickBehavior};

pub use error::SchedulerError;

use crate::{broker::Broker, dag_folder::DagFolder, metrics::Metrics, versions::VersionCache, wakeups::Wakeups};

struct Scheduler {
    settings: Settings,
    pool: Pool,
    /// Where tasks are published: the RabbitMQ session, or an in-process broker.
    broker: Arc<dyn Publish>,
    /// The RabbitMQ session, re-opened by the sweep and closed at shutdown (none in-process).
    rabbit: Option<Arc<Broker>>,
    /// Whether the sweep creates the runs DAG schedules make due (not in `gust dags test`).
    timetable: bool,
    versions: VersionCache,
    folder: DagFolder,
    name: String,
    first_beat: bool,
    pool_warnings: pool_warnings::PoolWarnings,
    operator_warnings: operator_warnings::OperatorWarnings,
    /// Fed by every sweep; served by the ops server (kept alive here) when one is configured.
    health: Health,
    _ops: Option<OpsServer>,
    /// Served at `/metrics` on the ops server.
    metrics: Metrics,
}

/// What woke the main loop.
enum Event {
    Rescan,
    Sweep,
    Wakeup(wakeups::Pending),
}

/// Runs the scheduler until `shutdown` resolves.
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> Result<(), SchedulerError> {
    let pool = db::connect(&settings.database.url, settings.database.pool_size).await?;
    let (metrics, exposition) = Metrics::with_exposition(settings.metrics.token.clone());
    // Up before RabbitMQ answers, so probes and scrapes see a scheduler that is still connecting.
    let health = Health::new("scheduler", settings.scheduler.safety_interval);
    let ops = OpsServer::start(settings.ops_bind(), health.clone(), exposition).await?;
    let topology = Topology::from_settings(&settings.amqp);
    let rabbit = Arc::new(Broker::connect(&settings.amqp, topology, pool.clone(), metrics.clone()).await?);
    run_with(settings, pool, rabbit.clone(), Some(rabbit), (metrics, health, ops), shutdown).await
}

/// Runs the scheduler on an in-process broker instead of RabbitMQ (`gust dags test`): the
/// same folder scan, run scheduling, dispatch and sweeps, but no runs from DAG schedules
/// (only the runs the caller creates); dead letters stay with `broker`.
pub async fn run_local(
    settings: Settings,
    broker: Arc<dyn Publish>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), SchedulerError> {
    let pool = db::connect(&settings.database.url, settings.database.pool_size).await?;
    // In process: no ops server, whatever the environment says.
    let health = Health::new("scheduler", settings.scheduler.safety_interval);
    run_with(settings, pool, broker, None, (Metrics::with_exposition(None).0, health, None), shutdown).await
}

async fn run_with(
    settings: Settings,
    pool: Pool,
    broker: Arc<dyn Publish>,
    rabbit: Option<Arc<Broker>>,
    (metrics, health, ops): (Metrics, Health, Option<OpsServer>),
    shutdown: impl Future<Output = ()>,
) -> Result<(), SchedulerError> {
    let wakeups = Arc::new(Wakeups::default());
    let mut listener = wakeups::listen(&settings.database.url, wakeups.clone()).await?;
    tracing::info!(folder = %settings.dags.folder.display(), namespace = %settings.amqp.namespace, "scheduler started");

    // Retention belongs to a real deployment's schedulers, not to `gust dags test`.
    let retention = match (&rabbit, settings.retention.max_age) {
        (Some(_), Some(max_age)) => {
            let retention = &settings.retention;
            tracing::info!(max_age_secs = max_age.as_secs(), "retention on: expired runs and records are deleted");
            Some(tokio::spawn(gust_shared::retention::run_periodically(
                pool.clone(),
                max_age,
                retention.interval,
                retention.batch_size,
            )))
        }
        _ => None,
    };
    let name = format!("scheduler@{}:{}", host_name(), std::process::id());
    let mut scheduler = Scheduler {
        settings,
        pool,
        timetable: rabbit.is_some(),
        broker,
        rabbit,
        versions: VersionCache::default(),
        folder: DagFolder::default(),
        name,
        first_beat: true,
        pool_warnings: pool_warnings::PoolWarnings::default(),
        operator_warnings: operator_warnings::OperatorWarnings::default(),
        health,
        _ops: ops,
        metrics,
    };
    let mut rescan = interval(scheduler.settings.scheduler.rescan_interval);
    let mut sweep = interval(scheduler.settings.scheduler.safety_interval);
    rescan.set_missed_tick_behavior(MissedTickBehavior::Delay);
    sweep.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tokio::pin!(shutdown);

    loop {
        let event = tokio::select! {
            _ = &mut shutdown => break,
            _ = rescan.tick() => Event::Rescan,
            _ = sweep.tick() => Event::Sweep,
            pending = wakeups.next() => Event::Wakeup(pending),
        };
        let started = Instant::now();
        match event {
            Event::Rescan => scheduler.rescan().await,
            Event::Sweep => scheduler.sweep().await,
            Event::Wakeup(pending) if pending.lost => {
                listener = scheduler.relisten(wakeups.clone()).await;
                scheduler.sweep().await;
            }
            Event::Wakeup(pending) => {
                for fileloc in &pending.reparse {
                    scheduler.folder.forget(fileloc);
                }
                if pending.dag_files_changed || !pending.reparse.is_empty() {
                    scheduler.rescan().await;
                }
                let triggered = scheduler.trigger_on_assets(Some(&pending.assets_queued)).await;
                if pending.runs_queued || triggered > 0 {
                    scheduler.start_queued().await;
                }
                for (run_pk, finished) in pending.runs {
                    scheduler.schedule(run_pk, finished.as_ref()).await;
                }
                scheduler.dispatch().await;
            }
        }
        scheduler.metrics.loop_duration.observe(started.elapsed().as_secs_f64());
    }
    listener.closed.abort();
    if let Some(retention) = retention {
        retention.abort();
    }
    if let Some(rabbit) = &scheduler.rabbit {
        rabbit.close().await;
    }
    if let Ok(client) = scheduler.pool.get().await {
        let _ = db::heartbeats::stopped(&client, &scheduler.name).await;
    }
    tracing::info!("scheduler stopped");
    Ok(())
}

impl Scheduler {
    async fn rescan(&mut self) {
        let paused_at_creation = self.settings.scheduler.dags_are_paused_at_creation;
        match self.folder.scan(&self.pool, &self.settings.dags.folder, paused_at_creation).await {
            Ok(report) => {
                tracing::debug!(?report, "DAG folder scanned");
                self.metrics.dag_files.set(i64::try_from(report.dags).unwrap_or(i64::MAX));
                self.metrics.dag_import_errors.set(i64::try_from(report.broken).unwrap_or(i64::MAX));
                for seconds in report.parse_seconds {
                    self.metrics.dag_parse_duration.observe(seconds);
                }
            }
            Err(e) => tracing::error!(error = %e, "DAG folder scan failed"),
        }
    }

    /// Records that this scheduler is alive, ends zombie tries, creates due
    /// scheduled runs, moves every live run on and dispatches.
    async fn sweep(&mut self) {
        self.beat().await;
        if let Some(rabbit) = &self.rabbit {
            rabbit.ensure().await;
        }
        let threshold = self.settings.scheduler.zombie_threshold;
        match lost_tries::reap_zombies(&self.pool, self.broker.as_ref(), &self.versions, threshold).await {
            Ok(reaped) => {
                self.metrics.zombies.inc_by(reaped as u64);
            }
            Err(e) => tracing::error!(error = %e, "ending zombie tasks failed"),
        }
        let timeout = self.settings.scheduler.task_queued_timeout;
        match lost_tries::fail_queued_too_long(&self.pool, self.broker.as_ref(), &self.versions, timeout).await {
            Ok(ended) => {
                self.metrics.queued_timeouts.inc_by(ended as u64);
            }
            Err(e) => tracing::error!(error = %e, "ending tasks queued for too long failed"),
        }
        if let Err(e) =
            lost_tries::republish_overdue_retries(&self.pool, self.broker.as_ref(), &self.versions, timeout).await
        {
            tracing::error!(error = %e, "publishing overdue retries again failed");
        }
        if self.timetable {
            if let Err(e) = timetable::create_due_runs(&self.pool).await {
                tracing::error!(error = %e, "creating scheduled runs failed");
            }
        }
        self.trigger_on_assets(None).await;
        let live = match self.pool.get().await {
            Ok(client) => db::runs::live_ids(&client).await,
            Err(e) => Err(e.into()),
        };
        match live {
            Ok(ids) => {
                for run_pk in ids {
                    self.schedule(run_pk, None).await;
                }
            }
            Err(e) => tracing::error!(error = %e, "listing live runs failed"),
        }
        self.dispatch().await;
        planner_statistics::refresh_if_outgrown(&self.pool, 0);
        if let Err(e) = self.metrics.refresh_gauges(&self.pool).await {
            tracing::warn!(error = %e, "counting task instances and pool slots for /metrics failed");
        }
        self.pool_warnings.check(&self.pool).await;
        self.operator_warnings.check(&self.pool).await;
    }

    /// Creates the asset-triggered runs due for `dag_ids` (every DAG with queued events when `None`); returns how many.
    /// Like scheduled runs, none in `gust dags test`.
    async fn trigger_on_assets(&self, dag_ids: Option<&std::collections::HashSet<String>>) -> usize {
        if !self.timetable || dag_ids.is_some_and(|ids| ids.is_empty()) {
            return 0;
        }
        match asset_triggers::create_triggered_runs(&self.pool, &self.versions, dag_ids).await {
            Ok(created) => created,
            Err(e) => {
                tracing::error!(error = %e, "creating asset-triggered runs failed");
                0
            }
        }
    }

    /// Starts the queued runs that may start (a run was created, or one finished).
    async fn start_queued(&self) {
        let queued = match self.pool.get().await {
            Ok(client) => db::runs::queued(&client).await,
            Err(e) => Err(e.into()),
        };
        match queued {
            Ok(runs) => {
                // Once the first queued run of a DAG (or of one of its backfills) is held back, the later ones are too.
                let mut held = std::collections::HashSet::new();
                for (run_pk, dag_id, backfill_id) in runs {
                    let line = (dag_id, backfill_id);
                    if held.contains(&line) {
                        continue;
                    }
                    if self.schedule(run_pk, None).await == Some(run_scheduling::Progress::Held) {
                        held.insert(line);
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "listing queued runs failed"),
        }
    }

    async fn beat(&mut self) {
        self.health.tick();
        let result = match self.pool.get().await {
            Ok(client) => {
                db::heartbeats::beat(&client, &self.name, "scheduler", &host_name(), 0, self.first_beat).await
            }
            Err(e) => Err(e.into()),
        };
        self.health.database(&result);
        match result {
            Ok(()) => {
                self.first_beat = false;
                self.metrics.heartbeats.inc();
            }
            Err(e) => tracing::warn!(error = %e, "scheduler heartbeat failed"),
        }
    }

    async fn schedule(
        &self,
        run_pk: i64,
        finished: Option<&std::collections::HashSet<String>>,
    ) -> Option<run_scheduling::Progress> {
        match run_scheduling::schedule_run(&self.pool, &self.versions, run_pk, finished, &self.metrics).await {
            Ok(progress) => Some(progress),
            Err(e) => {
                tracing::error!(run_pk, error = %e, "scheduling run failed");
                None
            }
        }
    }

    async fn dispatch(&self) {
        let batch = self.settings.scheduler.dispatch_batch;
        let secrets = self.settings.secrets.secrets().ok().flatten();
        if let Err(e) = dispatch::dispatch_scheduled(
            &self.pool,
            self.broker.as_ref(),
            &self.versions,
            batch,
            secrets.as_ref(),
            &self.metrics,
        )
        .await
        {
            tracing::error!(error = %e, "dispatching tasks failed");
        }
    }

    /// Re-opens the LISTEN connection, retrying until the database answers.
    async fn relisten(&self, wakeups: Arc<Wakeups>) -> wakeups::Listener {
        let mut delay = Duration::from_millis(200);
        loop {
            match wakeups::listen(&self.settings.database.url, wakeups.clone()).await {
                Ok(listener) => return listener,
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?delay, "re-opening LISTEN connection failed");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}
