//! Soak: one stack runs a steady mix for `--minutes` (default 20) while the
//! harness samples, every 10 s, what a leak would show in: every gust
//! process's RSS, CPU, threads, open files and TCP connections to PostgreSQL
//! and RabbitMQ, RabbitMQ channels per process (`rabbitmqctl`, every third
//! sample), the database's backends, each table's and its indexes' size and
//! rows, the queue depths, the backlog, throughput, run times and API
//! latency. Each series gets a least-squares growth per hour and a verdict
//! (see [`crate::trend`]). Not part of `all`; `--repeat` is ignored.
//!
//! The mix (catchup off, start date yesterday, every task on the `default` queue):
//! - `soak_etl`, every 30 s: a bash extract, three noop transforms, a bash load;
//! - `soak_fanout`, every 30 s: a bash task writes a list of 200 to its XCom,
//!   a noop task is mapped over it (200 instances), a bash task joins them;
//! - `soak_retry`, every 30 s: a bash task that fails its first two tries
//!   (retries 3, retry_delay 2 s: two trips through the 2 s delay queue), then a noop;
//! - `soak_doomed`, every minute: a bash task failing both its tries
//!   (retry_delay 5 s) with a noop downstream left `upstream_failed`, a
//!   `sleep 30` killed by its 2 s `execution_timeout`, and a noop that succeeds;
//! - `soak_triggered`: a → b (bash) → c, triggered over HTTP at every sample,
//!   after which the harness reads four pages (DAG list, runs, failed task
//!   instances, the fan-out's grid), timed.
//!
//! Invariants: the trends leave out a warm-up (2 minutes, a quarter of a
//! soak of 8 minutes or less, plus the retention age and a minute when
//! `--retention-minutes` is set, until the cleaner keeps pace); a soak whose
//! stack dies is failed, with the timeline sampled so far kept for diagnosis.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use anyhow::Context;
use gust_shared::amqp;
use lapin::{options::QueueDeclareOptions, types::FieldTable};

use super::{m, Ctx, Measurement, ScenarioOutcome};
use crate::{
    procs,
    report::fmt_num,
    resources::{self, mib},
    stack::{self, GustStack},
    trend::{Kind, Series, Timeline, Tolerance, Verdict},
};

/// Time between two samples.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// Start of a soak the trends leave out: pools fill, caches warm, tables get their first pages.
const WARMUP: Duration = Duration::from_secs(120);
/// A task instance or run unfinished and unchanged this long counts as stuck (the mix's runs take seconds).
const STUCK_AFTER: Duration = Duration::from_secs(300);
/// Samples between two `rabbitmqctl list_connections` (it starts an Erlang VM: ~0.4 s of CPU).
const CHANNELS_EVERY: usize = 3;
/// Mapped instances of each fan-out.
const FANOUT_WIDTH: usize = 200;
/// DAG whose runs fail by design.
const DOOMED_DAG: &str = "soak_doomed";
/// DAG triggered over HTTP at every sample.
const TRIGGERED_DAG: &str = "soak_triggered";
/// DAG whose grid page the harness reads.
const FANOUT_DAG: &str = "soak_fanout";
/// Every DAG of the mix.
const DAG_IDS: [&str; 5] = ["soak_etl", FANOUT_DAG, "soak_retry", DOOMED_DAG, TRIGGERED_DAG];
/// The retry delays of the mix, hence its delay queues.
const RETRY_DELAYS_MS: [u64; 2] = [2000, 5000];
/// Tables that keep a row (or more) per run, try, log line or audited request until retention deletes them.
const HISTORY_TABLES: [&str; 7] =
    ["dag_runs", "task_instances", "task_instance_tries", "task_logs", "xcom", "event_log", "dead_letters"];
/// Pages the harness reads at every sample: (series subject, path).
const API_PAGES: [(&str, &str); 4] = [
    ("dags", "/api/v2/dags"),
    ("dag_runs", "/api/v2/dags/~/dagRuns"),
    ("failed_task_instances", "/api/v2/dags/~/dagRuns/~/taskInstances?state=failed"),
    ("grid", "/dags/soak_fanout"),
];

const fn tolerance(abs_per_h: f64, rel_per_h: f64) -> Tolerance {
    Tolerance { abs_per_h, rel_per_h }
}

const fn kind(group: &'static str, label: &'static str, unit: &'static str, tolerance: Tolerance) -> Kind<'static> {
    Kind { group, label, unit, tolerance }
}

const RSS: Kind = kind("rss_mib", "{} RSS", "MiB", tolerance(1.0, 0.02));
const CPU: Kind = kind("cpu_pct", "{} CPU, % of one core", "%", tolerance(1.0, 0.1));
const THREADS: Kind = kind("threads", "{} threads", "", tolerance(1.0, 0.05));
const FDS: Kind = kind("open_fds", "{} open file descriptors", "", tolerance(2.0, 0.05));
const PG_CONNECTIONS: Kind = kind("pg_connections", "{} TCP connections to PostgreSQL", "", tolerance(1.0, 0.05));
const AMQP_CONNECTIONS: Kind = kind("amqp_connections", "{} TCP connections to RabbitMQ", "", tolerance(1.0, 0.05));
const CHANNELS: Kind = kind("amqp_channels", "{} RabbitMQ channels", "", tolerance(1.0, 0.05));
const BACKENDS: Kind = kind("pg_backends", "PostgreSQL backends on the database, {}", "", tolerance(1.0, 0.05));
const TABLE: Kind = kind("table_mib", "{} table (heap, TOAST, maps)", "MiB", tolerance(0.5, 0.02));
const INDEXES: Kind = kind("index_mib", "{} indexes", "MiB", tolerance(0.5, 0.02));
const ROWS: Kind = kind("rows", "{} live rows", "", tolerance(100.0, 0.02));
const DEAD_ROWS: Kind = kind("dead_rows", "{} dead rows", "", tolerance(100.0, 0.05));
const DATABASE: Kind = kind("database_mib", "database size, {}", "MiB", tolerance(0.5, 0.02));
const QUEUE: Kind = kind("queue_messages", "messages ready in {}", "", tolerance(5.0, 0.1));
const BACKLOG: Kind = kind("backlog", "{} not finished", "", tolerance(5.0, 0.1));
const ENDED: Kind = kind("ended_per_min", "tries ended {} per minute", "/min", tolerance(5.0, 0.05));
const RUN_TIME: Kind = kind("run_s", "{} run time (start → end, mean per interval)", "s", tolerance(0.05, 0.1));
const START_DELAY: Kind = kind("start_delay_s", "scheduled runs, start − interval end ({})", "s", tolerance(0.05, 0.1));
const API: Kind = kind("api_ms", "GET {} (one request per sample)", "ms", tolerance(1.0, 0.1));

/// Groups whose growth per hour becomes a metric of the outcome (the rest stay in the timeline).
const METRIC_GROUPS: [&str; 13] = [
    "rss_mib",
    "cpu_pct",
    "threads",
    "open_fds",
    "pg_connections",
    "amqp_connections",
    "amqp_channels",
    "pg_backends",
    "table_mib",
    "index_mib",
    "database_mib",
    "queue_messages",
    "backlog",
];

/// Runs the soak once.
pub async fn run(ctx: &Ctx) -> ScenarioOutcome {
    let minutes = ctx.soak_minutes;
    let total = Duration::from_secs(60 * minutes);
    let mut soak_ctx = ctx.clone();
    let mut warmup = if total <= 4 * WARMUP { total / 4 } else { WARMUP };
    if let Some(age) = ctx.soak_retention_minutes {
        soak_ctx.scheduler_env.push(("GUST__RETENTION__MAX_AGE".into(), format!("{age}m")));
        soak_ctx.scheduler_env.push(("GUST__RETENTION__INTERVAL".into(), "1m".into()));
        warmup += Duration::from_secs(60 * (age + 1));
    }
    let files = dag_files(chrono::Utc::now().date_naive() - chrono::Days::new(1));
    let mut soaked = Soaked::new(warmup);
    eprintln!(
        "[soak] {minutes} min on one stack ({} workers × concurrency {}), sampling every {}s, trends after {}s; retention {}",
        ctx.workers,
        ctx.concurrency,
        SAMPLE_EVERY.as_secs(),
        warmup.as_secs(),
        ctx.soak_retention_minutes.map_or("off".to_string(), |age| format!("{age} min"))
    );
    let result =
        GustStack::with(&soak_ctx, &files, async |stack| soak(&soak_ctx, stack, total, &mut soaked).await).await;
    soaked.timeline.analyse();
    let retention = ctx.soak_retention_minutes;
    let mut outcome = match result {
        Ok(()) => {
            soaked.annotate(retention);
            let measurements = soaked.measurements(minutes);
            let mut outcome = ScenarioOutcome::from_repetitions("soak", vec![Ok(measurements)]);
            outcome.notes = soaked.verdict_notes();
            outcome
        }
        Err(e) => ScenarioOutcome::from_repetitions("soak", vec![Err(format!("{e:#}"))]),
    };
    outcome.notes.extend(std::mem::take(&mut soaked.notes));
    outcome.timeline = Some(soaked.timeline);
    outcome.note(format!(
        "one stack, {} workers × concurrency {}, {minutes} min; mix: soak_etl (5 tasks) and soak_fanout (1 + {FANOUT_WIDTH} mapped + 1) \
         and soak_retry (fails twice, retry_delay 2 s) every 30 s, soak_doomed (fails for good, retry_delay 5 s; a 2 s \
         execution_timeout) every minute, soak_triggered (3 tasks) over HTTP every {}s with 4 API pages read; sampled every \
         {}s; growth per hour = least-squares slope after the first {}s; verdict `grows` needs the slope past the series' \
         tolerance (the larger of an absolute floor and a share of its mean per hour) and 3 standard errors; retention {}",
        ctx.workers,
        ctx.concurrency,
        SAMPLE_EVERY.as_secs(),
        SAMPLE_EVERY.as_secs(),
        warmup.as_secs(),
        retention.map_or("off (gust's default)".to_string(), |age| format!("{age} min, cleaning every minute")),
    ))
}

/// The five DAG files of the mix, scheduled from `start_date`.
fn dag_files(start_date: chrono::NaiveDate) -> Vec<(String, String)> {
    let header = |dag_id: &str, description: &str, schedule: &str| {
        format!(
            "dag_id: {dag_id}\ndescription: {description}\nschedule: {schedule}\nstart_date: {start_date}\n\
             catchup: false\nmax_active_runs: 4\ntags: [bench, soak]\ntasks:\n"
        )
    };
    let etl = header("soak_etl", "extract, three transforms, load", "{every: 30s}")
        + "  - {id: extract, operator: bash, command: 'echo extracting; seq 1 20'}\n\
           \x20 - {id: clean, operator: noop, depends_on: [extract]}\n\
           \x20 - {id: enrich, operator: noop, depends_on: [extract]}\n\
           \x20 - {id: score, operator: noop, depends_on: [extract]}\n\
           \x20 - {id: load, operator: bash, command: 'echo loading $GUST_RUN_ID', depends_on: [clean, enrich, score]}\n";
    let fanout = header(FANOUT_DAG, &format!("{FANOUT_WIDTH} mapped noop tasks"), "{every: 30s}")
        + &format!(
            "  - {{id: list, operator: bash, command: 'echo \"[$(seq -s, 0 {})]\" > \"$GUST_XCOM\"'}}\n\
             \x20 - {{id: each, operator: noop, expand: {{xcom: list}}}}\n\
             \x20 - {{id: join, operator: bash, command: 'echo joined', depends_on: [each]}}\n",
            FANOUT_WIDTH - 1
        );
    let retry = header("soak_retry", "fails twice, then succeeds", "{every: 30s}")
        + &format!(
            "  - {{id: flaky, operator: bash, retries: 3, retry_delay: {}ms, \
             command: 'echo try $GUST_TRY_NUMBER; [ $GUST_TRY_NUMBER -ge 3 ]'}}\n\
             \x20 - {{id: after, operator: noop, depends_on: [flaky]}}\n",
            RETRY_DELAYS_MS[0]
        );
    let doomed = header(DOOMED_DAG, "fails for good", "{every: 1m}")
        + &format!(
            "  - {{id: doomed, operator: bash, retries: 1, retry_delay: {}ms, command: 'echo giving up >&2; exit 3'}}\n\
             \x20 - {{id: never, operator: noop, depends_on: [doomed]}}\n\
             \x20 - {{id: too_slow, operator: bash, execution_timeout: 2s, command: 'sleep 30'}}\n\
             \x20 - {{id: fine, operator: noop}}\n",
            RETRY_DELAYS_MS[1]
        );
    let triggered = header(TRIGGERED_DAG, "triggered over HTTP", "null")
        + "  - {id: a, operator: noop}\n\
           \x20 - {id: b, operator: bash, command: 'echo conf of $GUST_RUN_ID', depends_on: [a]}\n\
           \x20 - {id: c, operator: noop, depends_on: [b]}\n";
    [("soak_etl", etl), (FANOUT_DAG, fanout), ("soak_retry", retry), (DOOMED_DAG, doomed), (TRIGGERED_DAG, triggered)]
        .into_iter()
        .map(|(dag_id, yaml)| (format!("{dag_id}.yaml"), yaml))
        .collect()
}

/// What the soak gathered; survives a failed stack.
struct Soaked {
    timeline: Timeline,
    notes: Vec<String>,
    ended_tries: f64,
    ended_runs: f64,
    retries: f64,
    triggered: usize,
    api_errors: usize,
    /// Database size at the first and the last sample, MiB.
    database_mib: Option<(f64, f64)>,
    /// Runs per DAG and state at the end.
    runs_by_state: Vec<(String, String, i64)>,
    /// Task instances and runs seen stuck during the soak: (what, how it looked when first seen, minute first seen).
    stuck_seen: Vec<(String, String, u64)>,
    /// Of those, what was still stuck at the end.
    stuck_at_end: Vec<String>,
    /// Warnings and errors the gust processes logged: (process, level and message, count).
    logged: Vec<(String, String, usize)>,
    /// Whether the server's autovacuum is off (`SHOW autovacuum`): dead rows then stay.
    autovacuum_off: bool,
}

impl Soaked {
    fn new(warmup: Duration) -> Soaked {
        Soaked {
            timeline: Timeline::new(SAMPLE_EVERY.as_secs_f64(), warmup.as_secs_f64()),
            notes: Vec::new(),
            ended_tries: 0.0,
            ended_runs: 0.0,
            retries: 0.0,
            triggered: 0,
            api_errors: 0,
            database_mib: None,
            runs_by_state: Vec::new(),
            stuck_seen: Vec::new(),
            stuck_at_end: Vec::new(),
            logged: Vec::new(),
            autovacuum_off: false,
        }
    }

    /// Notes once per distinct text.
    fn note_once(&mut self, note: String) {
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }

    /// Drops the table series that never changed and explains the growth retention-less history causes.
    fn annotate(&mut self, retention: Option<u64>) {
        let changed = |s: &Series| {
            let values: Vec<f64> = s.values.iter().flatten().copied().collect();
            values.iter().any(|v| Some(v) != values.first())
        };
        let tables: Vec<String> =
            self.timeline.series.iter().filter(|s| s.group == TABLE.group).map(|s| s.subject.clone()).collect();
        let mut unchanged = Vec::new();
        for table in tables {
            let key = |kind: Kind| format!("{}.{table}", kind.group);
            let moved = [TABLE, INDEXES].iter().any(|&k| self.timeline.get(&key(k)).is_some_and(changed));
            if !moved {
                unchanged.push(table.clone());
                let keys: Vec<String> = [TABLE, INDEXES, ROWS, DEAD_ROWS].map(key).to_vec();
                self.timeline.retain(|s| !keys.contains(&s.key));
            }
        }
        if !unchanged.is_empty() {
            self.notes.push(format!("tables whose size never changed (series dropped): {}", unchanged.join(", ")));
        }
        if let Some(per_try) = self.database_kib_per_task() {
            self.notes.push(format!(
                "the database grew {} KiB per try ended over the whole soak ({})",
                fmt_num(per_try),
                if retention.is_some() {
                    "retention on: what is left is what the cleaner had not yet reached, plus free space not returned"
                } else {
                    "retention off: every run keeps its task instances, tries, log lines and XComs"
                }
            ));
        }
        let history_kept = "history kept: retention is off (GUST__RETENTION__MAX_AGE unset, gust's default)";
        let never_vacuumed = "autovacuum is off on this PostgreSQL server (SHOW autovacuum), so the dead row versions \
                              every state change leaves are never reclaimed";
        let dead_rows_grow: Vec<String> = self
            .timeline
            .series
            .iter()
            .filter(|s| s.group == DEAD_ROWS.group && s.trend.as_ref().is_some_and(|t| t.verdict == Verdict::Grows))
            .map(|s| s.subject.clone())
            .collect();
        let autovacuum_off = self.autovacuum_off;
        for series in &mut self.timeline.series {
            let Some(trend) = series.trend.as_mut().filter(|t| t.verdict == Verdict::Grows) else { continue };
            let history = HISTORY_TABLES.contains(&series.subject.as_str())
                && [TABLE.group, INDEXES.group, ROWS.group].contains(&series.group.as_str());
            let bloat = autovacuum_off
                && (series.group == DEAD_ROWS.group
                    || ([TABLE.group, INDEXES.group].contains(&series.group.as_str())
                        && dead_rows_grow.contains(&series.subject)));
            let mut why = Vec::new();
            if retention.is_none() && (history || series.group == DATABASE.group) {
                why.push(history_kept);
            }
            if bloat || (autovacuum_off && series.group == DATABASE.group) {
                why.push(never_vacuumed);
            }
            if !why.is_empty() {
                trend.expected = Some(why.join("; and "));
            }
        }
    }

    fn database_kib_per_task(&self) -> Option<f64> {
        let (first, last) = self.database_mib?;
        (self.ended_tries > 0.0).then(|| (last - first) * 1024.0 / self.ended_tries)
    }

    /// One note per series that grows or shrinks, then the count of stable ones.
    fn verdict_notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        let mut stable = 0;
        for series in &self.timeline.series {
            let Some(trend) = &series.trend else { continue };
            match trend.verdict {
                Verdict::Stable => stable += 1,
                Verdict::TooFewSamples => notes.push(format!("{}: {}", series.label, trend.summary)),
                Verdict::Grows | Verdict::Shrinks => notes.push(format!(
                    "{}: {} ({} → {}{}){}",
                    series.label,
                    trend.summary,
                    fmt_num(trend.start),
                    fmt_num(trend.end),
                    if series.unit.is_empty() { String::new() } else { format!(" {}", series.unit) },
                    trend.expected.as_ref().map_or(String::new(), |why| format!("; expected, {why}"))
                )),
            }
        }
        notes.push(format!("{stable} of {} series stable", self.timeline.series.len()));
        notes
    }

    fn measurements(&self, minutes: u64) -> Vec<Measurement> {
        let mut out = vec![
            m("minutes", "soak length", "min", minutes as f64),
            m("samples", "samples taken", "", self.timeline.t_s.len() as f64),
            m("tries_ended", "tries ended (success, failed, up_for_retry, …)", "", self.ended_tries),
            m("tries_per_min", "tries ended per minute", "/min", self.ended_tries / minutes as f64),
            m("retries", "tries ended up_for_retry", "", self.retries),
            m("runs_ended", "runs ended", "", self.ended_runs),
            m("runs_triggered", "runs triggered over HTTP", "", self.triggered as f64),
            m("api_errors", "API reads or triggers that failed", "", self.api_errors as f64),
            m(
                "unexpected_failed_runs",
                "failed runs of DAGs other than soak_doomed",
                "",
                self.unexpected_failed_runs(),
            ),
            m(
                "stuck_seen",
                "task instances and runs seen unfinished and unchanged for 5 minutes or more",
                "",
                self.stuck_seen.len() as f64,
            ),
            m("stuck_at_end", "of those, still stuck at the end", "", self.stuck_at_end.len() as f64),
        ];
        for process in self.timeline.series.iter().filter(|s| s.group == RSS.group).map(|s| s.subject.as_str()) {
            let lines: usize = self.logged.iter().filter(|(p, _, _)| p == process).map(|(_, _, n)| n).sum();
            let key: String = format!("log_warnings_{process}")
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            out.push(m(&key, &format!("{process}: lines logged at WARN or ERROR"), "", lines as f64));
        }
        if let Some(per_task) = self.database_kib_per_task() {
            out.push(m("database_kib_per_try", "database growth per try ended", "KiB", per_task));
        }
        let mut reported: Vec<&Series> =
            self.timeline.series.iter().filter(|s| METRIC_GROUPS.contains(&s.group.as_str())).collect();
        reported.sort_by_key(|s| METRIC_GROUPS.iter().position(|g| *g == s.group));
        for series in reported {
            let Some(trend) = &series.trend else { continue };
            if trend.per_hour.is_finite() {
                let unit = if series.unit.is_empty() { "/h".to_string() } else { format!("{}/h", series.unit) };
                let key: String = format!("{}_per_h", series.key)
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                    .collect();
                out.push(m(&key, &format!("{}: growth per hour", series.label), &unit, trend.per_hour));
            }
        }
        out
    }

    fn unexpected_failed_runs(&self) -> f64 {
        let failed: i64 = self
            .runs_by_state
            .iter()
            .filter(|(dag_id, state, _)| dag_id != DOOMED_DAG && state == "failed")
            .map(|(_, _, n)| n)
            .sum();
        failed as f64
    }
}

/// Runs the mix on `stack` for `total`, sampling into `soaked`.
async fn soak(ctx: &Ctx, stack: &mut GustStack, total: Duration, soaked: &mut Soaked) -> anyhow::Result<()> {
    for dag_id in DAG_IDS {
        stack.wait_for_dag(dag_id).await?;
    }
    let mut probe = Probe::new(ctx, stack).await?;
    let autovacuum: String = probe.db.query_one("SELECT current_setting('autovacuum')", &[]).await?.get(0);
    soaked.autovacuum_off = autovacuum == "off";
    if soaked.autovacuum_off {
        soaked.notes.push(
            "autovacuum is off on this PostgreSQL server: dead row versions are never reclaimed, so tables that are \
             updated (task_instances, dag_runs) grow by their updates too, and scans over them slow down"
                .into(),
        );
    }
    let started = Instant::now();
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for index in 0.. {
        tick.tick().await;
        stack.ensure_running()?;
        let elapsed = started.elapsed();
        soaked.timeline.tick(elapsed.as_secs_f64());
        probe.exercise_api(stack, soaked).await;
        probe.sample(soaked, index).await?;
        if index.is_multiple_of(6) {
            eprintln!("[soak] {}", progress(&soaked.timeline, elapsed, total));
            for (what, how) in probe.stuck(soaked).await? {
                if !soaked.stuck_seen.iter().any(|(seen, _, _)| *seen == what) {
                    eprintln!("[soak] STUCK: {what} {how}");
                    soaked.stuck_seen.push((what, how, elapsed.as_secs() / 60));
                }
            }
        }
        if elapsed >= total {
            break;
        }
    }
    let _ = probe.amqp.close(200, "done".into()).await;
    let db = probe.live_db(soaked).await.context("reopening the harness's database connection at the end")?;
    let rows = db.query("SELECT dag_id, state, count(*) FROM dag_runs GROUP BY 1, 2 ORDER BY 1, 2", &[]).await?;
    soaked.runs_by_state = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    let runs: Vec<String> = soaked.runs_by_state.iter().map(|(d, s, n)| format!("{d} {s} {n}")).collect();
    soaked.notes.push(format!("runs by DAG and state at the end: {}", runs.join(", ")));
    let at_end = stuck(db).await?;
    for (what, how) in &at_end {
        if !soaked.stuck_seen.iter().any(|(seen, _, _)| seen == what) {
            soaked.stuck_seen.push((what.clone(), how.clone(), total.as_secs() / 60));
        }
    }
    soaked.stuck_at_end = at_end.into_iter().map(|(what, _)| what).collect();
    for (what, how, minute) in &soaked.stuck_seen {
        let end = if soaked.stuck_at_end.contains(what) { "still stuck at the end" } else { "moved on before the end" };
        soaked.notes.push(format!("STUCK (first seen at minute {minute}): {what} {how}; {end}"));
    }
    for (process, log) in stack.process_logs() {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        for (message, count) in warnings_in(&text) {
            soaked.notes.push(format!("{process} logged {count} × {message}"));
            soaked.logged.push((process.clone(), message, count));
        }
    }
    Ok(())
}

/// Each distinct `WARN`/`ERROR` message of a gust log (tracing's text format, colours or not), with how often it
/// appears, in order of first appearance; the message is the level, the target and the words before the first
/// `key=value` field.
fn warnings_in(log: &str) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for line in log.lines() {
        let plain = strip_ansi(line);
        let Some(start) = [" WARN ", " ERROR "].iter().filter_map(|level| plain.find(level)).min() else { continue };
        let words: Vec<&str> = plain[start..].split_whitespace().take_while(|w| !w.contains('=')).collect();
        let message = words.join(" ");
        match out.iter_mut().find(|(known, _)| *known == message) {
            Some((_, count)) => *count += 1,
            None => out.push((message, 1)),
        }
    }
    out
}

/// `text` without ANSI colour sequences (`ESC [ … m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Task instances unfinished and unchanged for [`STUCK_AFTER`], with their tries, and runs unfinished as long:
/// (what, how it looks now).
async fn stuck(db: &tokio_postgres::Client) -> anyhow::Result<Vec<(String, String)>> {
    let after = STUCK_AFTER.as_secs_f64();
    let tasks = db
        .query(
            "SELECT ti.dag_id || '/' || ti.run_id || '/' || ti.task_id \
                    || CASE WHEN ti.map_index >= 0 THEN '[' || ti.map_index || ']' ELSE '' END, \
                    ti.state, ti.try_number, ti.max_tries, coalesce(ti.hostname, '-'), \
                    extract(epoch FROM now() - ti.updated_at)::float8, \
                    coalesce((SELECT string_agg(t.try_number || ' ' || t.state \
                                  || coalesce(' (' || t.failure_reason || ')', ''), ', ' ORDER BY t.try_number) \
                              FROM task_instance_tries t WHERE t.ti_id = ti.id), 'none') \
             FROM task_instances ti \
             WHERE ti.state IN ('scheduled', 'queued', 'running', 'up_for_retry', 'up_for_reschedule') \
               AND ti.updated_at < now() - make_interval(secs => $1) \
             ORDER BY ti.updated_at",
            &[&after],
        )
        .await
        .context("listing stuck task instances")?;
    let mut out: Vec<(String, String)> = tasks
        .iter()
        .map(|r| {
            let what = format!("task instance {}", r.get::<_, String>(0));
            let how = format!(
                "is {} (try {} of {}, host {}) unchanged for {} s; ended tries: {}",
                r.get::<_, String>(1),
                r.get::<_, i32>(2),
                r.get::<_, i32>(3),
                r.get::<_, String>(4),
                fmt_num(r.get(5)),
                r.get::<_, String>(6)
            );
            (what, how)
        })
        .collect();
    let runs = db
        .query(
            "SELECT dag_id || '/' || run_id, state, extract(epoch FROM now() - coalesce(start_date, queued_at))::float8 \
             FROM dag_runs WHERE state IN ('queued', 'running') \
               AND coalesce(start_date, queued_at) < now() - make_interval(secs => $1) ORDER BY id",
            &[&after],
        )
        .await
        .context("listing stuck runs")?;
    out.extend(runs.iter().map(|r| {
        let what = format!("run {}", r.get::<_, String>(0));
        (what, format!("is {} since {} s", r.get::<_, String>(1), fmt_num(r.get(2))))
    }));
    Ok(out)
}

/// One line on how the soak goes.
fn progress(timeline: &Timeline, elapsed: Duration, total: Duration) -> String {
    let last = |key: &str| timeline.get(key).and_then(|s| s.values.last().copied().flatten());
    let rss: Vec<String> = timeline
        .series
        .iter()
        .filter(|s| s.group == RSS.group)
        .filter_map(|s| Some(format!("{} {}", s.subject, fmt_num(s.values.last().copied().flatten()?))))
        .collect();
    let per_min: Vec<f64> = timeline
        .series
        .iter()
        .filter(|s| s.group == ENDED.group)
        .filter_map(|s| s.values.last().copied().flatten())
        .collect();
    format!(
        "{}/{} min: RSS MiB {}; database {} MiB; {} tries ended per minute over the last {}s; {} task instances not finished",
        elapsed.as_secs() / 60,
        total.as_secs() / 60,
        rss.join(", "),
        last("database_mib.total").map_or("?".into(), fmt_num),
        if per_min.is_empty() { "?".into() } else { fmt_num(per_min.iter().fold(0.0, |a, b| a + b)) },
        SAMPLE_EVERY.as_secs(),
        last("backlog.task_instances").map_or("?".into(), fmt_num),
    )
}

/// The port of `url` (the first of a comma-separated list), or `default`.
fn port_of(url: &str, default: u16) -> u16 {
    let first = url.split(',').next().unwrap_or_default().trim();
    reqwest::Url::parse(first).ok().and_then(|u| u.port()).unwrap_or(default)
}

/// Reads everything the soak samples.
struct Probe {
    processes: Vec<(String, i32)>,
    pg_port: u16,
    amqp_port: u16,
    clk_tck: f64,
    /// CPU seconds at the previous sample, by process (and `postgres`, `rabbitmq`).
    cpu_before: HashMap<String, (f64, Instant)>,
    /// Database clock (epoch seconds) at the previous sample.
    db_before: Option<f64>,
    amqp: lapin::Connection,
    amqp_url: String,
    /// (series subject, queue name).
    queues: Vec<(String, String)>,
    /// The harness's own connection to the stack's database, reopened when PostgreSQL restarts.
    db: tokio_postgres::Client,
    db_url: String,
    /// `pg_postmaster_start_time()` at the previous sample: a change is a server restart.
    postmaster_started: Option<String>,
}

impl Probe {
    async fn new(ctx: &Ctx, stack: &GustStack) -> anyhow::Result<Probe> {
        let topology = amqp::Topology::new(&stack.namespace);
        let mut queues = vec![
            ("work queue".to_string(), topology.work_queue(stack::QUEUE)),
            ("dead queue".to_string(), topology.dead_queue()),
        ];
        queues.extend(RETRY_DELAYS_MS.map(|ms| (format!("delay queue {ms} ms"), topology.delay_queue(ms))));
        Ok(Probe {
            processes: stack.processes(),
            pg_port: port_of(&ctx.db_base, 5432),
            amqp_port: port_of(&ctx.amqp_url, 5672),
            clk_tck: ctx.clk_tck,
            cpu_before: HashMap::new(),
            db_before: None,
            amqp: amqp::connect(&ctx.amqp_url, "gust-bench-soak").await?,
            amqp_url: ctx.amqp_url.clone(),
            db: stack::pg_connect(&stack.db_url).await?,
            db_url: stack.db_url.clone(),
            postmaster_started: None,
            queues,
        })
    }

    /// Triggers a run of [`TRIGGERED_DAG`] and reads the [`API_PAGES`], timed.
    async fn exercise_api(&mut self, stack: &GustStack, soaked: &mut Soaked) {
        match stack.trigger(TRIGGERED_DAG).await {
            Ok(_) => soaked.triggered += 1,
            Err(e) => {
                soaked.api_errors += 1;
                soaked.note_once(format!("a trigger failed: {e:#}"));
            }
        }
        for (subject, path) in API_PAGES {
            let started = Instant::now();
            let read = async {
                let response = stack.http.get(format!("{}{path}", stack.api)).send().await?.error_for_status()?;
                response.bytes().await
            };
            match read.await {
                Ok(_) => soaked.timeline.record(API, subject, started.elapsed().as_secs_f64() * 1000.0),
                Err(e) => {
                    soaked.api_errors += 1;
                    soaked.note_once(format!("GET {path} failed: {e}"));
                }
            }
        }
    }

    /// Samples the processes, the database and the broker once.
    async fn sample(&mut self, soaked: &mut Soaked, index: usize) -> anyhow::Result<()> {
        let amqp_ports = self.sample_processes(&mut soaked.timeline);
        if index.is_multiple_of(CHANNELS_EVERY) {
            self.sample_channels(soaked, &amqp_ports).await;
        }
        self.sample_queues(&mut soaked.timeline).await;
        if self.live_db(soaked).await.is_none() {
            return Ok(());
        }
        match self.sample_database(soaked).await {
            Err(e) if !self.db.is_closed() => Err(e.context("sampling the database")),
            _ => Ok(()),
        }
    }

    /// The harness's database connection, reopened if PostgreSQL closed it (a restart by another user of the
    /// server); `None` while it cannot be reopened.
    async fn live_db(&mut self, soaked: &mut Soaked) -> Option<&tokio_postgres::Client> {
        if self.db.is_closed() {
            match stack::pg_connect(&self.db_url).await {
                Ok(db) => {
                    self.db = db;
                    soaked.note_once(
                        "the harness lost its database connection and reopened it; samples of the database are \
                         missing while PostgreSQL was unreachable"
                            .into(),
                    );
                }
                Err(_) => return None,
            }
        }
        Some(&self.db)
    }

    /// [`stuck`] on the harness's connection; nothing while PostgreSQL is unreachable.
    async fn stuck(&mut self, soaked: &mut Soaked) -> anyhow::Result<Vec<(String, String)>> {
        let Some(db) = self.live_db(soaked).await else { return Ok(Vec::new()) };
        match stuck(db).await {
            Err(e) if !self.db.is_closed() => Err(e),
            result => Ok(result.unwrap_or_default()),
        }
    }

    /// CPU % of one core used by `subject` since the previous sample, given its CPU seconds now.
    fn cpu_pct(&mut self, subject: &str, seconds: f64) -> Option<f64> {
        let now = Instant::now();
        let (before, at) = self.cpu_before.insert(subject.to_string(), (seconds, now))?;
        let wall = now.duration_since(at).as_secs_f64();
        (wall > 0.0).then(|| 100.0 * (seconds - before) / wall)
    }

    /// Memory, CPU, threads, files and connections of every gust process;
    /// returns the local ports of their RabbitMQ connections, by process.
    fn sample_processes(&mut self, timeline: &mut Timeline) -> HashMap<u16, String> {
        let mut amqp_ports = HashMap::new();
        for (name, pid) in self.processes.clone() {
            if let Ok(memory) = resources::memory(pid) {
                timeline.record(RSS, &name, mib(memory.rss_kib));
            }
            if let Some(pct) = resources::cpu_seconds(pid, self.clk_tck).ok().and_then(|s| self.cpu_pct(&name, s)) {
                timeline.record(CPU, &name, pct);
            }
            if let Ok(threads) = resources::threads(pid) {
                timeline.record(THREADS, &name, threads as f64);
            }
            if let Ok(fds) = resources::open_fds(pid) {
                timeline.record(FDS, &name, fds as f64);
            }
            if let Ok(connections) = resources::tcp_connections(pid) {
                let to = |port: u16| connections.iter().filter(|c| c.remote_port == port).count() as f64;
                timeline.record(PG_CONNECTIONS, &name, to(self.pg_port));
                timeline.record(AMQP_CONNECTIONS, &name, to(self.amqp_port));
                for c in connections.iter().filter(|c| c.remote_port == self.amqp_port) {
                    amqp_ports.insert(c.local_port, name.clone());
                }
            }
        }
        let services: [(&str, &[&str]); 2] =
            [("postgres", &["postgres"]), ("rabbitmq", &["beam.smp", "erl_child_setup", "inet_gethost"])];
        for (subject, commands) in services {
            let seconds = resources::cpu_seconds_of_commands(commands, self.clk_tck);
            if let Some(pct) = self.cpu_pct(subject, seconds) {
                timeline.record(CPU, subject, pct);
            }
        }
        amqp_ports
    }

    /// Channels per gust process, from `rabbitmqctl list_connections peer_port channels`.
    async fn sample_channels(&mut self, soaked: &mut Soaked, amqp_ports: &HashMap<u16, String>) {
        let Some(listing) = procs::output_of("rabbitmqctl", &["-q", "list_connections", "peer_port", "channels"]).await
        else {
            soaked.note_once(
                "RabbitMQ channels not sampled: `rabbitmqctl -q list_connections` failed (not installed, or no access \
                 to the node's Erlang cookie); the management API is not used because it is often not enabled"
                    .into(),
            );
            return;
        };
        let mut channels: HashMap<&str, f64> = HashMap::new();
        for (port, count) in parse_connections(&listing) {
            if let Some(name) = amqp_ports.get(&port) {
                *channels.entry(name.as_str()).or_default() += count as f64;
            }
        }
        for (name, _) in &self.processes {
            if amqp_ports.values().any(|n| n == name) {
                soaked.timeline.record(CHANNELS, name, channels.get(name.as_str()).copied().unwrap_or(0.0));
            }
        }
    }

    /// Messages ready in the work, dead and delay queues (passive declares; a missing delay queue has expired: 0).
    async fn sample_queues(&mut self, timeline: &mut Timeline) {
        if self.amqp.status().connected() {
            // Keeps going on the connection it has.
        } else if let Ok(connection) = amqp::connect(&self.amqp_url, "gust-bench-soak").await {
            self.amqp = connection;
        }
        for (subject, queue) in &self.queues {
            let Ok(channel) = self.amqp.create_channel().await else { return };
            let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
            match channel.queue_declare(queue.as_str().into(), passive, FieldTable::default()).await {
                Ok(q) => {
                    timeline.record(QUEUE, subject, f64::from(q.message_count()));
                    let _ = channel.close(200, "done".into()).await;
                }
                // The broker closed the channel: the queue does not exist (a delay queue expires when idle).
                Err(_) if subject.starts_with("delay") => timeline.record(QUEUE, subject, 0.0),
                Err(_) => {}
            }
        }
    }

    /// Backends, table sizes, backlog and what ended since the previous sample.
    async fn sample_database(&mut self, soaked: &mut Soaked) -> anyhow::Result<()> {
        let db = &self.db;
        let started: String = db.query_one("SELECT pg_postmaster_start_time()::text", &[]).await?.get(0);
        if self.postmaster_started.as_ref().is_some_and(|before| *before != started) {
            let minute = soaked.timeline.t_s.last().copied().unwrap_or_default() / 60.0;
            soaked.notes.push(format!(
                "PostgreSQL restarted (server start time {started}, seen at minute {}): the server is shared with \
                 other users of this machine; every gust process had to reconnect, so connection counts and RSS may \
                 step there",
                fmt_num(minute)
            ));
        }
        self.postmaster_started = Some(started);
        let timeline = &mut soaked.timeline;
        let row = db
            .query_one(
                "SELECT count(*), count(*) FILTER (WHERE state = 'active'), \
                        count(*) FILTER (WHERE state LIKE 'idle in transaction%') \
                 FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .await?;
        for (i, subject) in ["all", "active", "idle in transaction"].into_iter().enumerate() {
            timeline.record(BACKENDS, subject, row.get::<_, i64>(i) as f64);
        }
        let tables = db
            .query(
                "SELECT c.relname::text, pg_table_size(c.oid), pg_indexes_size(c.oid), \
                        coalesce(s.n_live_tup, 0), coalesce(s.n_dead_tup, 0) \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid \
                 WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1",
                &[],
            )
            .await?;
        let bytes_mib = |bytes: i64| bytes as f64 / (1024.0 * 1024.0);
        for row in &tables {
            let table: String = row.get(0);
            timeline.record(TABLE, &table, bytes_mib(row.get(1)));
            timeline.record(INDEXES, &table, bytes_mib(row.get(2)));
            timeline.record(ROWS, &table, row.get::<_, i64>(3) as f64);
            timeline.record(DEAD_ROWS, &table, row.get::<_, i64>(4) as f64);
        }
        let row = db
            .query_one(
                "SELECT pg_database_size(current_database()), extract(epoch FROM now())::float8, \
                        (SELECT count(*) FROM task_instances \
                         WHERE state IN ('scheduled', 'queued', 'running', 'up_for_retry', 'up_for_reschedule')), \
                        (SELECT count(*) FROM dag_runs WHERE state IN ('queued', 'running'))",
                &[],
            )
            .await?;
        let database = bytes_mib(row.get(0));
        timeline.record(DATABASE, "total", database);
        soaked.database_mib = Some(soaked.database_mib.map_or((database, database), |(first, _)| (first, database)));
        timeline.record(BACKLOG, "task_instances", row.get::<_, i64>(2) as f64);
        timeline.record(BACKLOG, "runs", row.get::<_, i64>(3) as f64);
        let now: f64 = row.get(1);
        let Some(before) = self.db_before.replace(now) else { return Ok(()) };
        let per_min = 60.0 / (now - before).max(1e-3);
        // Tries, by the state they ended in: every try has a row in task_instance_tries once it ends.
        let ended = db
            .query(
                "SELECT state, count(*) FROM task_instance_tries \
                 WHERE end_date > to_timestamp($1) AND end_date <= to_timestamp($2) GROUP BY state",
                &[&before, &now],
            )
            .await?;
        let mut counts: HashMap<String, f64> =
            ["success", "failed", "up_for_retry"].map(|s| (s.to_string(), 0.0)).into_iter().collect();
        for row in &ended {
            counts.insert(row.get(0), row.get::<_, i64>(1) as f64);
        }
        for (state, count) in &counts {
            timeline.record(ENDED, state, count * per_min);
            soaked.ended_tries += count;
        }
        soaked.retries += counts["up_for_retry"];
        let runs = db
            .query(
                "SELECT dag_id, count(*), avg(extract(epoch FROM end_date - start_date))::float8 FROM dag_runs \
                 WHERE end_date > to_timestamp($1) AND end_date <= to_timestamp($2) GROUP BY dag_id",
                &[&before, &now],
            )
            .await?;
        for row in &runs {
            let dag_id: String = row.get(0);
            soaked.ended_runs += row.get::<_, i64>(1) as f64;
            if let Some(seconds) = row.get::<_, Option<f64>>(2) {
                timeline.record(RUN_TIME, &dag_id, seconds);
            }
        }
        let late: Option<f64> = db
            .query_one(
                "SELECT avg(extract(epoch FROM start_date - data_interval_end))::float8 FROM dag_runs \
                 WHERE run_type = 'scheduled' AND start_date > to_timestamp($1) AND start_date <= to_timestamp($2)",
                &[&before, &now],
            )
            .await?
            .get(0);
        if let Some(late) = late {
            timeline.record(START_DELAY, "mean", late);
        }
        Ok(())
    }
}

/// `(peer port, channels)` of each line of `rabbitmqctl -q list_connections peer_port channels`
/// (header lines, if the version prints them, are skipped).
fn parse_connections(listing: &str) -> Vec<(u16, u64)> {
    listing
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let port = fields.next()?.parse().ok()?;
            let channels = fields.next()?.parse().ok()?;
            Some((port, channels))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rabbitmqctl_connection_lines_give_port_and_channels_and_headers_are_skipped() {
        let listing = "peer_port\tchannels\n51234\t3\n51240\t1\n\n";
        assert_eq!(parse_connections(listing), vec![(51234, 3), (51240, 1)]);
    }

    #[test]
    fn log_warnings_are_counted_by_message_without_colours_timestamps_or_fields() {
        let log = "\u{1b}[2m2026-11-30T21:37:05.676757Z\u{1b}[0m \u{1b}[33m WARN\u{1b}[0m \u{1b}[2mgust_scheduler::lost_tries\u{1b}[0m\u{1b}[2m:\u{1b}[0m overdue retry published again \u{1b}[3mdag_id\u{1b}[0m\u{1b}[2m=\u{1b}[0msoak_retry\n\
                   2026-11-30T21:37:10.672323Z  WARN gust_scheduler::lost_tries: overdue retry published again dag_id=soak_doomed\n\
                   2026-11-30T21:38:00.000000Z  INFO gust_scheduler: not a warning\n\
                   2026-11-30T21:39:00.000000Z ERROR gust_scheduler: sweep failed error=boom\n";
        assert_eq!(
            warnings_in(log),
            vec![
                ("WARN gust_scheduler::lost_tries: overdue retry published again".to_string(), 2),
                ("ERROR gust_scheduler: sweep failed".to_string(), 1),
            ]
        );
    }

    #[test]
    fn ports_come_from_the_first_url_or_the_default() {
        assert_eq!(port_of("amqp://guest:guest@127.0.0.1:5673/%2f,amqp://other:5674", 5672), 5673);
        assert_eq!(port_of("postgres://postgres@127.0.0.1/postgres", 5432), 5432);
        assert_eq!(port_of("not a url", 5432), 5432);
    }

    #[test]
    fn the_mix_is_five_scheduled_or_triggered_dags_without_catchup() {
        let files = dag_files(chrono::NaiveDate::from_ymd_opt(2026, 11, 29).unwrap());
        assert_eq!(files.len(), DAG_IDS.len());
        for ((name, yaml), dag_id) in files.iter().zip(DAG_IDS) {
            assert_eq!(name, &format!("{dag_id}.yaml"));
            assert!(yaml.starts_with(&format!("dag_id: {dag_id}\n")), "{yaml}");
            assert!(yaml.contains("catchup: false\n") && yaml.contains("start_date: 2026-11-29\n"), "{yaml}");
        }
        let fanout = &files[1].1;
        assert!(fanout.contains("seq -s, 0 199") && fanout.contains("expand: {xcom: list}"), "{fanout}");
    }

    #[test]
    fn every_generated_dag_file_parses_with_the_engine_parser() {
        for (name, yaml) in dag_files(chrono::NaiveDate::from_ymd_opt(2026, 11, 29).unwrap()) {
            let parsed = gust_shared::dag::parse_dag_file(&name, &yaml);
            assert!(parsed.is_ok(), "{name}: {parsed:?}\n{yaml}");
        }
    }

    #[test]
    fn with_autovacuum_off_a_table_whose_dead_rows_grow_is_explained_by_it_and_one_without_is_not() {
        let mut soaked = Soaked::new(Duration::ZERO);
        soaked.autovacuum_off = true;
        for i in 0..10 {
            soaked.timeline.tick(60.0 * i as f64);
            let grows = 1.0 + i as f64;
            soaked.timeline.record(TABLE, "component_heartbeats", grows);
            soaked.timeline.record(DEAD_ROWS, "component_heartbeats", 1000.0 * grows);
            soaked.timeline.record(TABLE, "dags", grows);
            soaked.timeline.record(DEAD_ROWS, "dags", 0.0);
        }
        soaked.timeline.analyse();
        soaked.annotate(Some(60));
        let expected = |key: &str| soaked.timeline.get(key).and_then(|s| s.trend.clone()).and_then(|t| t.expected);
        assert!(expected("table_mib.component_heartbeats").is_some_and(|why| why.contains("autovacuum is off")));
        assert!(expected("dead_rows.component_heartbeats").is_some_and(|why| why.contains("autovacuum is off")));
        assert_eq!(expected("table_mib.dags"), None, "growth without dead rows is not bloat");
    }

    #[test]
    fn the_history_tables_and_only_they_get_the_retention_explanation() {
        let mut soaked = Soaked::new(Duration::ZERO);
        for i in 0..10 {
            soaked.timeline.tick(60.0 * i as f64);
            let grows = 1.0 + i as f64;
            for table in ["task_logs", "dags"] {
                soaked.timeline.record(TABLE, table, grows);
                soaked.timeline.record(INDEXES, table, 0.5);
            }
            soaked.timeline.record(TABLE, "users", 0.01);
            soaked.timeline.record(INDEXES, "users", 0.02);
        }
        soaked.timeline.analyse();
        soaked.annotate(None);
        let expected = |key: &str| soaked.timeline.get(key).and_then(|s| s.trend.clone()).and_then(|t| t.expected);
        assert!(expected("table_mib.task_logs").is_some_and(|why| why.contains("retention is off")));
        assert_eq!(expected("table_mib.dags"), None, "a growing dags table is a finding, not history");
        assert!(soaked.timeline.get("table_mib.users").is_none(), "unchanged tables are dropped");
        assert!(soaked.notes.iter().any(|n| n.contains("never changed") && n.contains("users")), "{:?}", soaked.notes);
        let notes = soaked.verdict_notes();
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with("dags table (heap, TOAST, maps): grows: 60.0 MiB per hour (2.00 → 9.00 MiB)")),
            "{notes:?}"
        );
    }
}
