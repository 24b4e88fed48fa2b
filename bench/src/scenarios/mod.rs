//! The benchmark scenarios, what they share (the run context) and what they
//! produce (measurements, summarised over repetitions into an outcome).

pub mod apiload;
pub mod bash;
pub mod big;
pub mod chain;
pub mod dagfiles;
pub mod fanout;
pub mod history;
pub mod mixed;
pub mod raw;
pub mod runs;
pub mod scale;
pub mod soak;
pub mod ui;

use std::path::PathBuf;

use serde::Serialize;

use crate::{
    stack::Binaries,
    stats::{self, Summary},
    trend::Timeline,
};

/// Everything a scenario needs to know about this invocation.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Repetitions of each scenario.
    pub repeat: usize,
    /// gust workers (and Celery workers) per stack.
    pub workers: usize,
    /// Tasks each worker runs at once.
    pub concurrency: usize,
    /// Tasks in the noop fan-out.
    pub fanout_tasks: usize,
    /// Deliveries reserved per concurrency slot, for gust and Celery.
    pub prefetch_multiplier: usize,
    /// Tasks in the bash fan-out.
    pub bash_fanout_tasks: usize,
    /// Tasks in the noop chain.
    pub chain_len: usize,
    /// Tasks in the bash chain.
    pub bash_chain_len: usize,
    /// Runs triggered in the runs scenario.
    pub runs: usize,
    /// Concurrent HTTP clients in the runs scenario.
    pub clients: usize,
    /// Tasks in the fan-out of the big scenario.
    pub big_tasks: usize,
    /// DAG files the dagfiles scenario generates, one stack per count.
    pub dag_file_counts: Vec<usize>,
    /// Seconds the apiload clients keep sending requests.
    pub load_seconds: u64,
    /// Minutes the soak runs.
    pub soak_minutes: u64,
    /// Minutes of history the soak's scheduler keeps; `None`: retention off.
    pub soak_retention_minutes: Option<u64>,
    /// Settings given to the scheduler process only, after the stack's own (a scenario's overrides).
    pub scheduler_env: Vec<(String, String)>,
    /// Keep each stack's temporary folder (DAGs, logs) even on success.
    pub keep_logs: bool,
    /// The gust release binaries.
    pub bins: Binaries,
    /// PostgreSQL URL whose database name is replaced per stack.
    pub db_base: String,
    /// RabbitMQ URL.
    pub amqp_url: String,
    /// The Cargo workspace root.
    pub workspace: PathBuf,
    /// Clock ticks per second of `/proc/<pid>/stat`.
    pub clk_tck: f64,
}

/// One value measured in one repetition.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    /// Stable key, e.g. `tasks_per_s`.
    pub key: String,
    /// What it is, for the table.
    pub label: String,
    /// Its unit.
    pub unit: String,
    /// The value.
    pub value: f64,
}

/// Shorthand for a [`Measurement`].
pub fn m(key: &str, label: &str, unit: &str, value: f64) -> Measurement {
    Measurement { key: key.into(), label: label.into(), unit: unit.into(), value }
}

/// How a scenario went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every repetition succeeded.
    Ok,
    /// Some repetitions failed; the metrics summarise the others.
    Partial,
    /// Every repetition failed; there are no metrics.
    Failed,
    /// A prerequisite (e.g. Celery) could not be installed or started.
    Unavailable,
}

/// One metric over all successful repetitions.
#[derive(Debug, Clone, Serialize)]
pub struct MetricResult {
    /// Stable key.
    pub key: String,
    /// What it is.
    pub label: String,
    /// Its unit.
    pub unit: String,
    /// Median, min and max over the repetitions.
    #[serde(flatten)]
    pub summary: Summary,
    /// Every repetition's value.
    pub samples: Vec<f64>,
}

/// What the harness learned about one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioOutcome {
    /// Scenario name, e.g. `fanout`.
    pub name: String,
    /// How it went.
    pub status: Status,
    /// Repetitions attempted.
    pub repetitions: usize,
    /// Why repetitions failed (or why the scenario is unavailable).
    pub failures: Vec<String>,
    /// The metrics, in the order they were first measured.
    pub metrics: Vec<MetricResult>,
    /// Anything a reader needs to interpret the numbers.
    pub notes: Vec<String>,
    /// What a long-running scenario (the soak) sampled over time, with each series' trend.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Timeline>,
}

impl ScenarioOutcome {
    /// Summarises the repetitions of scenario `name`.
    pub fn from_repetitions(name: &str, repetitions: Vec<Result<Vec<Measurement>, String>>) -> ScenarioOutcome {
        let attempted = repetitions.len();
        let mut failures = Vec::new();
        let mut metrics: Vec<(Measurement, Vec<f64>)> = Vec::new();
        for (i, repetition) in repetitions.into_iter().enumerate() {
            match repetition {
                Ok(measurements) => {
                    for measurement in measurements {
                        match metrics.iter_mut().find(|(first, _)| first.key == measurement.key) {
                            Some((_, values)) => values.push(measurement.value),
                            None => {
                                let value = measurement.value;
                                metrics.push((measurement, vec![value]));
                            }
                        }
                    }
                }
                Err(reason) => failures.push(format!("repetition {}: {reason}", i + 1)),
            }
        }
        let status = match (failures.len(), attempted) {
            (0, _) => Status::Ok,
            (f, a) if f < a => Status::Partial,
            _ => Status::Failed,
        };
        let metrics = metrics
            .into_iter()
            .filter_map(|(first, samples)| {
                let summary = stats::summarize(&samples)?;
                Some(MetricResult { key: first.key, label: first.label, unit: first.unit, summary, samples })
            })
            .collect();
        ScenarioOutcome {
            name: name.into(),
            status,
            repetitions: attempted,
            failures,
            metrics,
            notes: Vec::new(),
            timeline: None,
        }
    }

    /// A scenario that could not run at all.
    pub fn unavailable(name: &str, reason: String) -> ScenarioOutcome {
        ScenarioOutcome {
            name: name.into(),
            status: Status::Unavailable,
            repetitions: 0,
            failures: vec![reason],
            metrics: Vec::new(),
            notes: Vec::new(),
            timeline: None,
        }
    }

    /// Adds a note.
    pub fn note(mut self, note: impl Into<String>) -> ScenarioOutcome {
        self.notes.push(note.into());
        self
    }

    /// Joins the outcomes of one scenario run one repetition at a time (`parts`, in order) into one
    /// outcome, as if its repetitions had run in one go; an unavailable part stands for the whole.
    pub fn join(parts: Vec<ScenarioOutcome>) -> Option<ScenarioOutcome> {
        if let Some(unavailable) = parts.iter().find(|p| p.status == Status::Unavailable) {
            return Some(unavailable.clone());
        }
        let mut joined = ScenarioOutcome::from_repetitions(&parts.first()?.name, Vec::new());
        for part in parts {
            for failure in part.failures {
                let reason = failure.split_once(": ").map_or(failure.as_str(), |(_, reason)| reason);
                joined.failures.push(format!("repetition {}: {reason}", joined.repetitions + 1));
            }
            joined.repetitions += part.repetitions;
            for metric in part.metrics {
                match joined.metrics.iter_mut().find(|m| m.key == metric.key) {
                    Some(known) => known.samples.extend(metric.samples),
                    None => joined.metrics.push(metric),
                }
            }
            for note in part.notes {
                if !joined.notes.contains(&note) {
                    joined.notes.push(note);
                }
            }
        }
        for metric in &mut joined.metrics {
            if let Some(summary) = stats::summarize(&metric.samples) {
                metric.summary = summary;
            }
        }
        joined.status = match (joined.failures.len(), joined.repetitions) {
            (0, _) => Status::Ok,
            (f, r) if f < r => Status::Partial,
            _ => Status::Failed,
        };
        Some(joined)
    }

    /// Median of metric `key`, if it was measured.
    pub fn median(&self, key: &str) -> Option<f64> {
        self.metrics.iter().find(|m| m.key == key).map(|m| m.summary.median)
    }
}

/// Runs `once` `ctx.repeat` times (printing progress) and summarises the repetitions.
pub async fn repeat(
    ctx: &Ctx,
    name: &str,
    mut once: impl AsyncFnMut(usize) -> anyhow::Result<Vec<Measurement>>,
) -> ScenarioOutcome {
    let mut repetitions = Vec::new();
    for i in 0..ctx.repeat {
        eprintln!("[{name}] repetition {}/{}", i + 1, ctx.repeat);
        let result = once(i).await.map_err(|e| format!("{e:#}"));
        match &result {
            Ok(measurements) => {
                let shown: Vec<String> =
                    measurements.iter().map(|m| format!("{}={:.3}{}", m.key, m.value, unit_suffix(&m.unit))).collect();
                eprintln!("[{name}]   {}", shown.join(" "));
            }
            Err(reason) => eprintln!("[{name}]   FAILED: {reason}"),
        }
        repetitions.push(result);
    }
    ScenarioOutcome::from_repetitions(name, repetitions)
}

fn unit_suffix(unit: &str) -> String {
    if unit.is_empty() {
        String::new()
    } else {
        format!(" {unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repetitions_are_summarised_per_metric_and_failures_kept() {
        let outcome = ScenarioOutcome::from_repetitions(
            "x",
            vec![
                Ok(vec![m("a", "A", "s", 1.0), m("b", "B", "", 10.0)]),
                Err("boom".into()),
                Ok(vec![m("a", "A", "s", 3.0)]),
            ],
        );
        assert_eq!(outcome.status, Status::Partial);
        assert_eq!(outcome.failures, vec!["repetition 2: boom".to_string()]);
        assert_eq!(outcome.median("a"), Some(2.0));
        assert_eq!(outcome.metrics[0].samples, vec![1.0, 3.0]);
        assert_eq!(outcome.median("b"), Some(10.0));
        assert_eq!(outcome.median("c"), None);
    }

    #[test]
    fn repetitions_run_one_at_a_time_join_as_if_run_together() {
        let part = |result: Result<Vec<Measurement>, String>| {
            ScenarioOutcome::from_repetitions("x", vec![result]).note("how it was measured")
        };
        let joined = ScenarioOutcome::join(vec![
            part(Ok(vec![m("a", "A", "s", 1.0)])),
            part(Err("boom".into())),
            part(Ok(vec![m("a", "A", "s", 5.0), m("b", "B", "", 10.0)])),
            part(Ok(vec![m("a", "A", "s", 3.0)])),
        ])
        .unwrap();
        assert_eq!(joined.repetitions, 4);
        assert_eq!(joined.status, Status::Partial);
        assert_eq!(joined.failures, vec!["repetition 2: boom".to_string()]);
        assert_eq!(joined.metrics[0].samples, vec![1.0, 5.0, 3.0]);
        assert_eq!(joined.median("a"), Some(3.0));
        assert_eq!(joined.median("b"), Some(10.0));
        assert_eq!(joined.notes, vec!["how it was measured".to_string()]);

        let unavailable = ScenarioOutcome::unavailable("x", "no pip".into());
        let joined = ScenarioOutcome::join(vec![unavailable]).unwrap();
        assert_eq!(joined.status, Status::Unavailable);
        assert!(ScenarioOutcome::join(Vec::new()).is_none());
    }

    #[test]
    fn all_failed_is_failed_with_no_metrics() {
        let outcome = ScenarioOutcome::from_repetitions("x", vec![Err("a".into()), Err("b".into())]);
        assert_eq!(outcome.status, Status::Failed);
        assert!(outcome.metrics.is_empty());
    }
}
