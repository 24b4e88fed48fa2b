//! The report: scenario outcomes, gust/Celery and gust/floor ratios, the
//! targets with met / not met, printed as a table and written as JSON.

use std::{fmt::Write, path::Path};

use anyhow::Context;
use serde::Serialize;

use crate::{
    celery::{self, Backend},
    machine::Machine,
    scenarios::{ScenarioOutcome, Status},
};

/// Settings of this invocation, recorded with the results.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Repetitions of each scenario.
    pub repeat: usize,
    /// Workers per stack.
    pub workers: usize,
    /// Tasks each worker runs at once.
    pub concurrency: usize,
    /// Deliveries reserved per concurrency slot, for gust and Celery.
    pub prefetch_multiplier: usize,
    /// Tasks in the noop fan-out.
    pub fanout_tasks: usize,
    /// Tasks in the bash fan-out.
    pub bash_fanout_tasks: usize,
    /// Tasks in the noop chain.
    pub chain_len: usize,
    /// Tasks in the bash chain.
    pub bash_chain_len: usize,
    /// Runs triggered in the runs scenario.
    pub runs: usize,
    /// HTTP clients in the runs scenario.
    pub clients: usize,
    /// `GUST__*` variables inherited from the harness's environment (they reach every gust process).
    pub inherited_gust_env: Vec<String>,
}

/// A derived ratio between two measured medians.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// What is compared.
    pub name: String,
    /// The ratio, when both sides were measured.
    pub value: Option<f64>,
    /// How to read it.
    pub meaning: String,
}

/// Whether a target was met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The measured median meets the target.
    Met,
    /// It does not.
    NotMet,
    /// Nothing to judge (the scenario did not run or failed).
    NotMeasured,
}

/// One target from the issue, judged on the medians.
#[derive(Debug, Clone, Serialize)]
pub struct TargetCheck {
    /// The target as the issue states it.
    pub target: String,
    /// The value it was judged on, with its unit.
    pub measured: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Anything that qualifies the verdict.
    pub note: String,
}

/// Everything one invocation produced.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// When the report was written (local time, RFC 3339).
    pub generated_at: String,
    /// The command line.
    pub command: Vec<String>,
    /// Settings.
    pub config: Config,
    /// Machine and versions.
    pub machine: Machine,
    /// Warnings about the setup (e.g. stale binaries).
    pub warnings: Vec<String>,
    /// The scenarios, in the order they ran.
    pub scenarios: Vec<ScenarioOutcome>,
    /// gust against Celery and against the floors.
    pub comparisons: Vec<Comparison>,
    /// The targets, met or not.
    pub targets: Vec<TargetCheck>,
}

/// Fan-out target from the issue, in tasks/s.
pub const FANOUT_TARGET: f64 = 5000.0;
/// How many times Celery's best worker fan-out throughput gust must reach.
pub const CELERY_FACTOR_TARGET: f64 = 10.0;
/// Smallest `mixed` ÷ `fanout` throughput: what ran before may cost at most 10 %.
pub const MIXED_RATIO_TARGET: f64 = 0.9;
/// Chain hop p50 target, in ms (the second speed round's; the first asked for 5 ms).
pub const HOP_P50_TARGET_MS: f64 = 2.5;
/// Idle worker RSS target, in MiB.
pub const IDLE_WORKER_TARGET_MIB: f64 = 20.0;
/// Most milliseconds the grid of 25 runs × 1,000 tasks may take to render and transfer.
pub const UI_GRID_TARGET_MS: f64 = 150.0;
/// Most milliseconds the task page of a 10,000-line log may take to render and transfer.
pub const UI_LOG_PAGE_TARGET_MS: f64 = 100.0;
/// Largest hop-p50 ratio (history / empty) still called flat.
pub const FLAT_HOP_RATIO: f64 = 1.25;
/// Largest sweep-proxy ratio still called flat, unless the growth is below [`FLAT_SWEEP_ABS_MS`].
pub const FLAT_SWEEP_RATIO: f64 = 1.5;
/// A sweep-proxy growth below this many ms counts as flat whatever the ratio (timer noise).
pub const FLAT_SWEEP_ABS_MS: f64 = 0.5;
/// Fan-out size the targets are stated for.
pub const FULL_FANOUT: usize = 10_000;

impl Report {
    /// Builds the report: derives the comparisons and judges the targets.
    pub fn new(
        command: Vec<String>,
        config: Config,
        machine: Machine,
        warnings: Vec<String>,
        scenarios: Vec<ScenarioOutcome>,
    ) -> Report {
        let mut report = Report {
            generated_at: chrono::Local::now().to_rfc3339(),
            command,
            config,
            machine,
            warnings,
            scenarios,
            comparisons: Vec::new(),
            targets: Vec::new(),
        };
        report.comparisons = report.compare();
        report.targets = report.judge();
        report
    }

    fn median(&self, scenario: &str, key: &str) -> Option<f64> {
        self.scenarios.iter().find(|s| s.name == scenario)?.median(key)
    }

    fn ratio(&self, (s1, k1): (&str, &str), (s2, k2): (&str, &str)) -> Option<f64> {
        Some(self.median(s1, k1)? / self.median(s2, k2)?)
    }

    /// Celery's best median among `keys` (see [`best`]).
    fn celery_best(&self, keys: impl IntoIterator<Item = String>, higher_is_better: bool) -> Option<(String, f64)> {
        best(keys.into_iter().map(|key| (self.median("celery", &key), key)), higher_is_better)
    }

    /// Celery's highest worker fan-out throughput over the result backends, with its key.
    fn celery_best_workers(&self) -> Option<(String, f64)> {
        self.celery_best(Backend::ALL.map(celery::workers_throughput_key), true)
    }

    /// gust's fan-out tasks/s ÷ Celery's best worker throughput, with Celery's key.
    fn over_celery_workers(&self) -> Option<(String, f64)> {
        let (key, celery) = self.celery_best_workers()?;
        Some((key, self.median("fanout", "tasks_per_s")? / celery))
    }

    fn compare(&self) -> Vec<Comparison> {
        let c = |name: &str, value: Option<f64>, meaning: &str| Comparison {
            name: name.into(),
            value,
            meaning: meaning.into(),
        };
        let workers = self.over_celery_workers();
        let celery_workers_key = self.celery_best_workers().map_or_else(|| "—".to_string(), |(key, _)| key);
        let fastest_chain =
            self.celery_best(Backend::ALL.map(|b| format!("{}hop_p50_ms", celery::chain_prefix(b))), false);
        vec![
            c(
                "gust / Celery fan-out throughput (Celery's workers alone, best result backend)",
                workers.map(|(_, ratio)| ratio),
                &format!(
                    "× Celery's worker tasks/s with the tasks preloaded, publisher not timed ({celery_workers_key}; higher is better)"
                ),
            ),
            c(
                "gust / Celery fan-out throughput, publisher-inclusive (PostgreSQL results)",
                self.ratio(("fanout", "tasks_per_s"), ("celery", &celery::publisher_inclusive_key(Backend::Postgres))),
                "× Celery's send → last result tasks/s, its single-threaded Python publisher included (higher is better)",
            ),
            c(
                "gust / Celery chain hop p50 (Celery's faster result backend)",
                fastest_chain.as_ref().and_then(|(_, celery)| Some(self.median("chain", "hop_p50_ms")? / celery)),
                &format!(
                    "× Celery's per-hop latency ({}; lower is better)",
                    fastest_chain.as_ref().map_or("—", |(key, _)| key.as_str())
                ),
            ),
            c(
                "gust fan-out / RabbitMQ floor",
                self.ratio(("fanout", "tasks_per_s"), ("raw", "amqp_msgs_per_s")),
                "fraction of the broker's persistent publish+confirm+consume+ack rate",
            ),
            c(
                "gust fan-out / PostgreSQL floor",
                self.ratio(("fanout", "tasks_per_s"), ("raw", "pg_commits_per_s")),
                "fraction of the database's single-row commit rate (gust needs ≥2 commits per task)",
            ),
        ]
    }

    fn judge(&self) -> Vec<TargetCheck> {
        let check =
            |target: &str, value: Option<f64>, unit: &str, ok: &dyn Fn(f64) -> bool, note: String| TargetCheck {
                target: target.into(),
                measured: value.map(|v| format!("{} {unit}", fmt_num(v))).unwrap_or_else(|| "—".into()),
                verdict: match value {
                    Some(v) if ok(v) => Verdict::Met,
                    Some(_) => Verdict::NotMet,
                    None => Verdict::NotMeasured,
                },
                note,
            };
        let scaled = if self.config.fanout_tasks == FULL_FANOUT {
            String::new()
        } else {
            format!("measured with {} tasks; the target is for {FULL_FANOUT}", self.config.fanout_tasks)
        };
        let hop_ratio = self.median("history", "hop_p50_ratio");
        let sweep_before = self.median("history", "sweep_proxy_empty_ms");
        let sweep_after = self.median("history", "sweep_proxy_history_ms");
        let sweep_flat = match (sweep_before, sweep_after) {
            (Some(b), Some(a)) => Some(a / b <= FLAT_SWEEP_RATIO || a - b <= FLAT_SWEEP_ABS_MS),
            _ => None,
        };
        let mut flat = check(
            "scheduler per-tick cost flat with history size",
            hop_ratio,
            "× hop p50",
            &|r| r <= FLAT_HOP_RATIO && sweep_flat == Some(true),
            format!(
                "flat = hop p50 ratio ≤ {FLAT_HOP_RATIO} and sweep proxy ratio ≤ {FLAT_SWEEP_RATIO} (or < {FLAT_SWEEP_ABS_MS} ms more); sweep proxy {} → {} ms",
                sweep_before.map(fmt_num).unwrap_or_else(|| "—".into()),
                sweep_after.map(fmt_num).unwrap_or_else(|| "—".into())
            ),
        );
        if hop_ratio.is_some() && sweep_flat.is_none() {
            flat.verdict = Verdict::NotMeasured;
        }
        vec![
            check(
                "fan-out ≥ 5,000 noop tasks/s",
                self.median("fanout", "tasks_per_s"),
                "tasks/s",
                &|v| v >= FANOUT_TARGET,
                scaled.clone(),
            ),
            check(
                "fan-out ≥ 10× Celery",
                self.over_celery_workers().map(|(_, ratio)| ratio),
                "×",
                &|v| v >= CELERY_FACTOR_TARGET,
                [
                    self.celery_best_workers().map_or(String::new(), |(key, tasks_per_s)| {
                        format!("against Celery's best worker throughput, {key} = {} tasks/s", fmt_num(tasks_per_s))
                    }),
                    scaled,
                ]
                .into_iter()
                .filter(|part| !part.is_empty())
                .collect::<Vec<_>>()
                .join("; "),
            ),
            check(
                "fan-out after a chain within 10 % of a fresh one",
                self.ratio(("mixed", "tasks_per_s"), ("fanout", "tasks_per_s")),
                "× fresh",
                &|v| v >= MIXED_RATIO_TARGET,
                "`mixed` tasks/s ÷ `fanout` tasks/s".into(),
            ),
            check(
                "chain p50 ≤ 2.5 ms per hop",
                self.median("chain", "hop_p50_ms"),
                "ms",
                &|v| v <= HOP_P50_TARGET_MS,
                String::new(),
            ),
            check(
                "idle worker ≤ 20 MiB RSS",
                self.median("resources", "worker_idle_rss_mib"),
                "MiB",
                &|v| v <= IDLE_WORKER_TARGET_MIB,
                String::new(),
            ),
            flat,
            check(
                "UI grid (25 runs × 1,000 tasks) ≤ 150 ms",
                self.median("ui", "grid_ms"),
                "ms",
                &|v| v <= UI_GRID_TARGET_MS,
                String::new(),
            ),
            check(
                "UI page of a 10,000-line log ≤ 100 ms",
                self.median("ui", "log_page_ms"),
                "ms",
                &|v| v <= UI_LOG_PAGE_TARGET_MS,
                String::new(),
            ),
        ]
    }

    /// Whether every scenario that ran fully succeeded (unavailable ones do not count).
    pub fn all_ok(&self) -> bool {
        self.scenarios.iter().all(|s| matches!(s.status, Status::Ok | Status::Unavailable))
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(
            out,
            "gust benchmark — {} — {} cores, {} MiB, {}; kernel {}; PostgreSQL {}; RabbitMQ {}; commit {}{}",
            self.generated_at,
            show(&m.cores),
            show(&m.memory_mib),
            show(&m.cpu_model),
            show(&m.kernel),
            show(&m.postgresql),
            show(&m.rabbitmq),
            m.git_commit.as_deref().map(|c| &c[..c.len().min(12)]).unwrap_or("?"),
            if m.git_dirty == Some(true) { " (dirty)" } else { "" }
        );
        let c = &self.config;
        let _ = writeln!(
            out,
            "repeat {}, {} workers × concurrency {} (prefetch × {}), fan-out {} noop / {} bash tasks, chain {} / {}, {} runs by {} clients",
            c.repeat, c.workers, c.concurrency, c.prefetch_multiplier, c.fanout_tasks, c.bash_fanout_tasks, c.chain_len, c.bash_chain_len, c.runs, c.clients
        );
        for warning in &self.warnings {
            let _ = writeln!(out, "WARNING: {warning}");
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "| scenario | metric | median | min | max | unit |");
        let _ = writeln!(out, "|---|---|---:|---:|---:|---|");
        for scenario in &self.scenarios {
            let status = match scenario.status {
                Status::Ok => String::new(),
                other => format!(
                    " ({})",
                    serde_json::to_value(other).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
                ),
            };
            if scenario.metrics.is_empty() {
                let _ = writeln!(out, "| {}{status} | — | — | — | — | |", scenario.name);
            }
            for metric in &scenario.metrics {
                let s = &metric.summary;
                let _ = writeln!(
                    out,
                    "| {}{status} | {} | {} | {} | {} | {} |",
                    scenario.name,
                    metric.label,
                    fmt_num(s.median),
                    fmt_num(s.min),
                    fmt_num(s.max),
                    metric.unit
                );
            }
        }
        let failures: Vec<String> =
            self.scenarios.iter().flat_map(|s| s.failures.iter().map(move |f| format!("{}: {f}", s.name))).collect();
        if !failures.is_empty() {
            let _ = writeln!(out, "\nFailures:");
            for failure in failures {
                let _ = writeln!(out, "- {}", failure.replace('\n', "\n  "));
            }
        }
        let notes: Vec<String> =
            self.scenarios.iter().flat_map(|s| s.notes.iter().map(move |n| format!("{}: {n}", s.name))).collect();
        if !notes.is_empty() {
            let _ = writeln!(out, "\nNotes:");
            for note in notes {
                let _ = writeln!(out, "- {note}");
            }
        }
        let _ = writeln!(out, "\n| comparison | value | meaning |");
        let _ = writeln!(out, "|---|---:|---|");
        for comparison in &self.comparisons {
            let value = comparison.value.map(|v| format!("{}×", fmt_num(v))).unwrap_or_else(|| "—".into());
            let _ = writeln!(out, "| {} | {value} | {} |", comparison.name, comparison.meaning);
        }
        let _ = writeln!(out, "\n| target | measured (median) | verdict | note |");
        let _ = writeln!(out, "|---|---:|---|---|");
        for target in &self.targets {
            let verdict = match target.verdict {
                Verdict::Met => "met",
                Verdict::NotMet => "NOT MET",
                Verdict::NotMeasured => "not measured",
            };
            let _ = writeln!(out, "| {} | {} | {verdict} | {} |", target.target, target.measured, target.note);
        }
        out
    }

    /// Writes the JSON to `path` (through a `.tmp` file, so a reader never sees half a file).
    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, numbers_on_one_line(&serde_json::to_string_pretty(self)?) + "\n")
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
        Ok(())
    }
}

/// Pretty-printed JSON with every array of numbers (and nulls) on one line:
/// a soak's time series stay readable and a tenth of the size.
fn numbers_on_one_line(pretty: &str) -> String {
    let lines: Vec<&str> = pretty.lines().collect();
    let scalar = |line: &str| {
        let item = line.trim().trim_end_matches(',');
        serde_json::from_str::<serde_json::Value>(item).is_ok_and(|v| v.is_number() || v.is_null())
    };
    let mut out = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.ends_with('[') {
            let items = lines[i + 1..].iter().take_while(|l| scalar(l)).count();
            if let Some(close) = lines.get(i + 1 + items).filter(|l| l.trim().starts_with(']') && items > 0) {
                let joined: Vec<&str> =
                    lines[i + 1..i + 1 + items].iter().map(|l| l.trim().trim_end_matches(',')).collect();
                out.push(format!("{line}{}{}", joined.join(", "), close.trim()));
                i += items + 2;
                continue;
            }
        }
        out.push(line.to_string());
        i += 1;
    }
    out.join("\n")
}

fn show<T: std::fmt::Display>(value: &Option<T>) -> String {
    value.as_ref().map(ToString::to_string).unwrap_or_else(|| "?".into())
}

/// The best of `(value, key)` pairs that have a value: the highest when
/// `higher_is_better`, else the lowest; with its key.
pub fn best(values: impl IntoIterator<Item = (Option<f64>, String)>, higher_is_better: bool) -> Option<(String, f64)> {
    let measured = values.into_iter().filter_map(|(value, key)| Some((key, value?)));
    if higher_is_better {
        measured.max_by(|a, b| a.1.total_cmp(&b.1))
    } else {
        measured.min_by(|a, b| a.1.total_cmp(&b.1))
    }
}

/// A number with as many decimals as its size deserves.
pub fn fmt_num(value: f64) -> String {
    if !value.is_finite() {
        return format!("{value}");
    }
    let abs = value.abs();
    if abs >= 100.0 {
        format!("{value:.0}")
    } else if abs >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenarios::{m, ScenarioOutcome};

    fn machine() -> Machine {
        Machine {
            cores: Some(2),
            memory_mib: Some(1024),
            cpu_model: None,
            kernel: None,
            postgresql: None,
            rabbitmq: None,
            git_commit: None,
            git_dirty: None,
            rustc: None,
        }
    }

    fn config(fanout_tasks: usize) -> Config {
        Config {
            repeat: 1,
            workers: 2,
            concurrency: 8,
            prefetch_multiplier: 1,
            fanout_tasks,
            bash_fanout_tasks: 2000,
            chain_len: 200,
            bash_chain_len: 100,
            runs: 1000,
            clients: 8,
            inherited_gust_env: vec![],
        }
    }

    #[test]
    fn targets_are_judged_on_medians_and_missing_ones_are_not_measured() {
        let scenarios = vec![
            ScenarioOutcome::from_repetitions("fanout", vec![Ok(vec![m("tasks_per_s", "t", "tasks/s", 6000.0)])]),
            ScenarioOutcome::from_repetitions(
                "celery",
                vec![Ok(vec![
                    m("fanout_workers_tasks_per_s_pg", "t", "tasks/s", 700.0),
                    m("fanout_workers_tasks_per_s_rpc", "t", "tasks/s", 1000.0),
                    m("fanout_tasks_per_s_pg", "t", "tasks/s", 400.0),
                ])],
            ),
            ScenarioOutcome::from_repetitions("chain", vec![Ok(vec![m("hop_p50_ms", "h", "ms", 7.0)])]),
            ScenarioOutcome::from_repetitions("mixed", vec![Ok(vec![m("tasks_per_s", "t", "tasks/s", 5500.0)])]),
        ];
        let report = Report::new(vec![], config(FULL_FANOUT), machine(), vec![], scenarios);
        let verdicts: Vec<Verdict> = report.targets.iter().map(|t| t.verdict).collect();
        assert_eq!(
            verdicts,
            vec![
                Verdict::Met,
                Verdict::NotMet,
                Verdict::Met,
                Verdict::NotMet,
                Verdict::NotMeasured,
                Verdict::NotMeasured,
                Verdict::NotMeasured,
                Verdict::NotMeasured
            ]
        );
        assert_eq!(report.comparisons[0].value, Some(6.0));
        assert_eq!(report.comparisons[1].value, Some(15.0));
        assert!(report.table().contains("| fan-out ≥ 5,000 noop tasks/s | 6000 tasks/s | met |"));
    }

    #[test]
    fn the_celery_target_is_judged_against_its_best_worker_throughput_not_its_publisher() {
        let celery = |pg: f64, rpc: f64| {
            ScenarioOutcome::from_repetitions(
                "celery",
                vec![Ok(vec![
                    m("fanout_workers_tasks_per_s_pg", "t", "tasks/s", pg),
                    m("fanout_workers_tasks_per_s_rpc", "t", "tasks/s", rpc),
                    m("fanout_tasks_per_s_pg", "t", "tasks/s", 300.0),
                    m("chain_pg_hop_p50_ms", "h", "ms", 4.0),
                    m("chain_rpc_hop_p50_ms", "h", "ms", 2.0),
                ])],
            )
        };
        let gust = |tasks_per_s: f64| {
            vec![
                ScenarioOutcome::from_repetitions(
                    "fanout",
                    vec![Ok(vec![m("tasks_per_s", "t", "tasks/s", tasks_per_s)])],
                ),
                ScenarioOutcome::from_repetitions("chain", vec![Ok(vec![m("hop_p50_ms", "h", "ms", 3.0)])]),
            ]
        };
        let report = Report::new(
            vec![],
            config(FULL_FANOUT),
            machine(),
            vec![],
            [gust(4000.0), vec![celery(350.0, 500.0)]].concat(),
        );
        let target = &report.targets[1];
        assert_eq!(target.verdict, Verdict::NotMet, "4000 is 8× the rpc workers' 500, though 13× the publisher's 300");
        assert!(target.note.contains("fanout_workers_tasks_per_s_rpc = 500 tasks/s"), "{}", target.note);
        assert_eq!(report.comparisons[1].value, Some(4000.0 / 300.0));
        assert_eq!(report.comparisons[2].value, Some(1.5), "against the faster chain, rpc's 2 ms");

        let report = Report::new(
            vec![],
            config(FULL_FANOUT),
            machine(),
            vec![],
            [gust(6000.0), vec![celery(600.0, 500.0)]].concat(),
        );
        assert_eq!(report.targets[1].verdict, Verdict::Met);
        assert!(report.targets[1].note.contains("fanout_workers_tasks_per_s_pg = 600"), "{}", report.targets[1].note);
    }

    #[test]
    fn best_takes_the_highest_or_lowest_measured_value() {
        let values = || vec![(Some(2.0), "a".to_string()), (None, "b".to_string()), (Some(5.0), "c".to_string())];
        assert_eq!(best(values(), true), Some(("c".to_string(), 5.0)));
        assert_eq!(best(values(), false), Some(("a".to_string(), 2.0)));
        assert_eq!(best(vec![(None, "a".to_string())], true), None);
    }

    #[test]
    fn ui_targets_are_judged_on_the_grid_and_log_page_medians() {
        let scenarios = vec![ScenarioOutcome::from_repetitions(
            "ui",
            vec![Ok(vec![m("grid_ms", "g", "ms", 71.0), m("log_page_ms", "l", "ms", 120.0)])],
        )];
        let report = Report::new(vec![], config(FULL_FANOUT), machine(), vec![], scenarios);
        let ui: Vec<Verdict> = report.targets[6..].iter().map(|t| t.verdict).collect();
        assert_eq!(ui, vec![Verdict::Met, Verdict::NotMet]);
    }

    #[test]
    fn flat_history_needs_both_ratios() {
        let history = |hop_ratio: f64, sweep_after: f64| {
            let scenarios = vec![ScenarioOutcome::from_repetitions(
                "history",
                vec![Ok(vec![
                    m("hop_p50_ratio", "r", "×", hop_ratio),
                    m("sweep_proxy_empty_ms", "s", "ms", 1.0),
                    m("sweep_proxy_history_ms", "s", "ms", sweep_after),
                ])],
            )];
            Report::new(vec![], config(2000), machine(), vec![], scenarios).targets[5].verdict
        };
        assert_eq!(history(1.05, 1.2), Verdict::Met);
        assert_eq!(history(1.05, 5.0), Verdict::NotMet);
        assert_eq!(history(2.0, 1.0), Verdict::NotMet);
    }

    #[test]
    fn a_failed_scenario_shows_its_reason() {
        let scenarios = vec![ScenarioOutcome::from_repetitions("runs", vec![Err("timed out".into())])];
        let report = Report::new(vec![], config(2000), machine(), vec![], scenarios);
        assert!(!report.all_ok());
        let table = report.table();
        assert!(table.contains("| runs (failed) | — |"), "{table}");
        assert!(table.contains("- runs: repetition 1: timed out"), "{table}");
    }

    #[test]
    fn arrays_of_numbers_are_written_on_one_line_and_other_arrays_are_left_alone() {
        let value = serde_json::json!({
            "t_s": [0.0, 10.5, null],
            "command": ["gust-bench", "soak"],
            "nested": [[1, 2], [3]],
            "series": [{"values": [1, null]}],
            "empty": [],
        });
        let text = numbers_on_one_line(&serde_json::to_string_pretty(&value).unwrap());
        assert!(text.contains("\"t_s\": [0.0, 10.5, null]"), "{text}");
        assert!(text.contains("\"values\": [1, null]\n"), "{text}");
        assert!(text.contains("\"command\": [\n"), "strings keep one per line: {text}");
        assert!(text.contains("    [1, 2],\n    [3]\n"), "{text}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap(), value);
    }

    #[test]
    fn numbers_get_sensible_decimals() {
        assert_eq!(fmt_num(5123.4), "5123");
        assert_eq!(fmt_num(12.345), "12.3");
        assert_eq!(fmt_num(1.2345), "1.23");
    }
}
