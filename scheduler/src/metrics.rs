//! The scheduler's Prometheus metrics. Their names and labels are a contract
//! (docs/metrics.md; the dashboard and the alerts under deploy/ use them):
//! counters are incremented where the event happens, after its commit; the
//! gauges of task instances and pool slots are set once per sweep from one
//! grouped query each ([`gust_shared::db::metrics`]).

use deadpool_postgres::Pool;
use gust_shared::{
    db::{self, DbError},
    metrics::{seconds_histogram, Exposition},
};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// `run_type`: `manual`, `scheduled`, `backfill`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunTypeLabel {
    /// The run's type.
    pub run_type: String,
}

/// `state` of a finished run.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// `success` or `failed`.
    pub state: String,
}

/// `queue` a task was published to.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabel {
    /// The queue's name (without the namespace).
    pub queue: String,
}

/// `state` and `queue` of live task instances.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskInstanceLabels {
    /// An unfinished state.
    pub state: String,
    /// The task's queue.
    pub queue: String,
}

/// `pool` and which of its slots.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    /// The pool's name.
    pub pool: String,
    /// `open`, `running`, `queued` or `scheduled`.
    pub state: String,
}

/// `reason` a message was dead-lettered.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// As recorded in `dead_letters` (`malformed`, `delivery_limit`, …).
    pub reason: String,
}

/// Every metric the scheduler exports.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// `gust_scheduler_heartbeat_total`.
    pub heartbeats: Counter,
    /// `gust_scheduler_loop_duration_seconds`: one round of the main loop (a sweep, a rescan or a wake-up).
    pub loop_duration: Histogram,
    /// `gust_dag_files`.
    pub dag_files: Gauge,
    /// `gust_dag_import_errors`.
    pub dag_import_errors: Gauge,
    /// `gust_dag_parse_duration_seconds`: one DAG file read and parsed.
    pub dag_parse_duration: Histogram,
    /// `gust_dag_runs_created_total{run_type}`.
    pub runs_created: Family<RunTypeLabel, Counter>,
    /// `gust_dag_runs_finished_total{state}`.
    pub runs_finished: Family<StateLabel, Counter>,
    /// `gust_dag_run_duration_seconds`.
    pub run_duration: Histogram,
    /// `gust_dag_run_schedule_delay_seconds`.
    pub run_schedule_delay: Histogram,
    /// `gust_tasks_dispatched_total{queue}`.
    pub tasks_dispatched: Family<QueueLabel, Counter>,
    /// `gust_task_instances{state,queue}`.
    pub task_instances: Family<TaskInstanceLabels, Gauge>,
    /// `gust_pool_slots{pool,state}`.
    pub pool_slots: Family<PoolLabels, Gauge>,
    /// `gust_zombies_total`.
    pub zombies: Counter,
    /// `gust_queued_timeouts_total`.
    pub queued_timeouts: Counter,
    /// `gust_dead_letters_total{reason}`.
    pub dead_letters: Family<ReasonLabel, Counter>,
}

impl Metrics {
    /// Fresh metrics and the registry that serves them.
    pub fn new() -> (Metrics, Registry) {
        let metrics = Metrics {
            heartbeats: Counter::default(),
            loop_duration: seconds_histogram(),
            dag_files: Gauge::default(),
            dag_import_errors: Gauge::default(),
            dag_parse_duration: seconds_histogram(),
            runs_created: Family::default(),
            runs_finished: Family::default(),
            run_duration: seconds_histogram(),
            run_schedule_delay: seconds_histogram(),
            tasks_dispatched: Family::default(),
            task_instances: Family::default(),
            pool_slots: Family::default(),
            zombies: Counter::default(),
            queued_timeouts: Counter::default(),
            dead_letters: Family::default(),
        };
        let mut r = Registry::default();
        let m = metrics.clone();
        r.register("gust_scheduler_heartbeat", "Heartbeats this scheduler recorded", m.heartbeats);
        r.register(
            "gust_scheduler_loop_duration_seconds",
            "Time one round of the scheduler's main loop took (a sweep, a DAG rescan or a wake-up)",
            m.loop_duration,
        );
        r.register("gust_dag_files", "Files defining a DAG at the last scan", m.dag_files);
        r.register("gust_dag_import_errors", "DAG files that failed to import at the last scan", m.dag_import_errors);
        r.register(
            "gust_dag_parse_duration_seconds",
            "Time to read and parse one new or changed DAG file",
            m.dag_parse_duration,
        );
        r.register(
            "gust_dag_runs_created",
            "Runs this scheduler started (created their task instances), by run type",
            m.runs_created,
        );
        r.register("gust_dag_runs_finished", "Runs this scheduler finished, by state", m.runs_finished);
        r.register("gust_dag_run_duration_seconds", "Time from a run's start to its end", m.run_duration);
        r.register(
            "gust_dag_run_schedule_delay_seconds",
            "Time from when a run was due (its run_after) to its start",
            m.run_schedule_delay,
        );
        r.register("gust_tasks_dispatched", "Task tries published to RabbitMQ, by queue", m.tasks_dispatched);
        r.register(
            "gust_task_instances",
            "Unfinished task instances by state and queue, counted at the last sweep",
            m.task_instances,
        );
        r.register(
            "gust_pool_slots",
            "Pool slots by pool and state (open, running, queued, scheduled), at the last sweep",
            m.pool_slots,
        );
        r.register(
            "gust_zombies",
            "Running tries whose worker stopped heartbeating, ended by this scheduler",
            m.zombies,
        );
        r.register(
            "gust_queued_timeouts",
            "Queued tries whose message was lost or never taken (task_queued_timeout), ended by this scheduler",
            m.queued_timeouts,
        );
        r.register("gust_dead_letters", "Dead-lettered messages this scheduler recorded, by reason", m.dead_letters);
        (metrics, r)
    }

    /// Fresh metrics, served with `token` (`GUST__METRICS__TOKEN`) when one is set.
    pub fn with_exposition(token: Option<String>) -> (Metrics, Exposition) {
        let (metrics, registry) = Metrics::new();
        (metrics, Exposition::new(registry, token))
    }

    /// Sets the task instance and pool slot gauges from the database.
    pub async fn refresh_gauges(&self, pool: &Pool) -> Result<(), DbError> {
        let client = pool.get().await?;
        let live = db::metrics::live_task_instances(&client).await?;
        let pools = db::metrics::pool_slots(&client).await?;
        // Cleared first, so a state or pool that emptied reads as gone, not as its last count.
        self.task_instances.clear();
        for (state, queue, count) in live {
            self.task_instances.get_or_create(&TaskInstanceLabels { state, queue }).set(count);
        }
        self.pool_slots.clear();
        for pool in pools {
            for (state, slots) in [
                ("open", pool.open_slots()),
                ("running", pool.running_slots),
                ("queued", pool.queued_slots),
                ("scheduled", pool.scheduled_slots),
            ] {
                self.pool_slots.get_or_create(&PoolLabels { pool: pool.name.clone(), state: state.into() }).set(slots);
            }
        }
        Ok(())
    }
}
