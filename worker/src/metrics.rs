//! The worker's Prometheus metrics. Their names and labels are a contract
//! (docs/metrics.md; the dashboard and the alerts under deploy/ use them);
//! each is updated where its event happens, with a few atomic operations.

use gust_shared::metrics::{seconds_family, seconds_histogram, Exposition, SecondsFamily};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// `state` of a worker's slots.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SlotLabel {
    /// `busy` or `free`.
    pub state: &'static str,
}

/// `state`, `queue` and `operator` of a finished try.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FinishedLabels {
    /// The state recorded: `success`, `failed`, `up_for_retry`, `up_for_reschedule`, `skipped`.
    pub state: String,
    /// The task's queue.
    pub queue: String,
    /// The operator's name (`bash`, `http`, a custom operator's name, …).
    pub operator: String,
}

/// `operator` of a try.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperatorLabel {
    /// The operator's name.
    pub operator: String,
}

/// `queue` a try waited in.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabel {
    /// The queue's name (without the namespace).
    pub queue: String,
}

/// What became of a delivery.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Delivered {
    /// Its try was claimed and run.
    Claimed,
    /// Its try is already running or finished (a redelivery of the same try).
    Duplicate,
    /// It carries an older try than the task instance's current one.
    Stale,
    /// Its try's worker had stopped heartbeating; this worker took it over as the next try.
    Takeover,
    /// It can never run (unparseable, unknown task instance, missing operator): sent to the dead queue.
    DeadLettered,
}

/// `outcome` of a delivery.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// `claimed`, `duplicate`, `stale`, `takeover` or `dead-lettered`.
    pub outcome: &'static str,
}

impl Delivered {
    fn label(self) -> OutcomeLabel {
        let outcome = match self {
            Delivered::Claimed => "claimed",
            Delivered::Duplicate => "duplicate",
            Delivered::Stale => "stale",
            Delivered::Takeover => "takeover",
            Delivered::DeadLettered => "dead-lettered",
        };
        OutcomeLabel { outcome }
    }
}

/// Sizes of group-commit batches: 1 to [`crate::group_commit`]'s largest.
const BATCH_BUCKETS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// Every metric the worker exports.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// `gust_worker_slots{state="busy"}`.
    slots_busy: Gauge,
    /// `gust_worker_slots{state="free"}`.
    slots_free: Gauge,
    /// `gust_task_instances_finished_total{state,queue,operator}`.
    finished: Family<FinishedLabels, Counter>,
    /// `gust_task_duration_seconds{operator}`.
    task_duration: SecondsFamily<OperatorLabel>,
    /// `gust_task_queued_duration_seconds{queue}`.
    queued_duration: SecondsFamily<QueueLabel>,
    /// `gust_deliveries_total{outcome}`.
    deliveries: Family<OutcomeLabel, Counter>,
    /// `gust_task_timeouts_total`.
    pub timeouts: Counter,
    /// `gust_handbacks_total`.
    pub handbacks: Counter,
    /// `gust_group_commit_batch_size`.
    pub batch_size: Histogram,
    /// `gust_group_commit_duration_seconds`.
    pub batch_duration: Histogram,
}

impl Metrics {
    /// Fresh metrics for a worker with `concurrency` slots, served with `token` when one is set.
    pub fn with_exposition(concurrency: usize, token: Option<String>) -> (Metrics, Exposition) {
        let slots: Family<SlotLabel, Gauge> = Family::default();
        // One statement each: a family's guard held while creating the next series would deadlock.
        let slots_busy = slots.get_or_create(&SlotLabel { state: "busy" }).clone();
        let slots_free = slots.get_or_create(&SlotLabel { state: "free" }).clone();
        let metrics = Metrics {
            slots_busy,
            slots_free,
            finished: Family::default(),
            task_duration: seconds_family(),
            queued_duration: seconds_family(),
            deliveries: Family::default(),
            timeouts: Counter::default(),
            handbacks: Counter::default(),
            batch_size: Histogram::new(BATCH_BUCKETS),
            batch_duration: seconds_histogram(),
        };
        metrics.slots_free.set(i64::try_from(concurrency).unwrap_or(i64::MAX));
        let mut r = Registry::default();
        let m = metrics.clone();
        r.register("gust_worker_slots", "This worker's concurrency slots, busy or free", slots);
        r.register(
            "gust_task_instances_finished",
            "Tries this worker ran and recorded, by the state recorded, queue and operator",
            m.finished,
        );
        r.register("gust_task_duration_seconds", "Time an operator ran one try", m.task_duration);
        r.register(
            "gust_task_queued_duration_seconds",
            "Time from the scheduler's publish of a try to this worker's claim (first tries and cleared ones; retries wait in a delay queue on purpose and are left out)",
            m.queued_duration,
        );
        r.register(
            "gust_deliveries",
            "Deliveries this worker handled, by outcome: claimed, duplicate, stale, takeover, dead-lettered",
            m.deliveries,
        );
        r.register("gust_task_timeouts", "Tries stopped at their execution_timeout", m.timeouts);
        r.register(
            "gust_handbacks",
            "Deliveries handed back to the broker unrun or interrupted (shutdown, database away)",
            m.handbacks,
        );
        r.register(
            "gust_group_commit_batch_size",
            "Claims and successes written in one group-commit statement",
            m.batch_size,
        );
        r.register(
            "gust_group_commit_duration_seconds",
            "Time one group-commit statement took, commit included",
            m.batch_duration,
        );
        (metrics, Exposition::new(r, token))
    }

    /// A slot was taken for a delivery; it is free again when the returned guard drops.
    pub fn slot_taken(&self) -> SlotGuard {
        self.slots_busy.inc();
        self.slots_free.dec();
        SlotGuard { busy: self.slots_busy.clone(), free: self.slots_free.clone() }
    }

    /// Counts a delivery's outcome.
    pub fn delivered(&self, outcome: Delivered) {
        self.deliveries.get_or_create(&outcome.label()).inc();
    }

    /// Counts a recorded try and observes how long its operator ran.
    pub fn finished(&self, state: &str, queue: &str, operator: &str, seconds: f64) {
        let labels =
            FinishedLabels { state: state.to_string(), queue: queue.to_string(), operator: operator.to_string() };
        self.finished.get_or_create(&labels).inc();
        self.task_duration.get_or_create(&OperatorLabel { operator: operator.to_string() }).observe(seconds);
    }

    /// Observes how long a claimed try waited in `queue`.
    pub fn waited(&self, queue: &str, seconds: f64) {
        self.queued_duration.get_or_create(&QueueLabel { queue: queue.to_string() }).observe(seconds);
    }
}

/// Gives a slot back to the free count when dropped.
#[derive(Debug)]
pub struct SlotGuard {
    busy: Gauge,
    free: Gauge,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.busy.dec();
        self.free.inc();
    }
}
