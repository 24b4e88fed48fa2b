//! `gust dags list|get|pause|unpause|trigger`: DAGs over the API, and
//! waiting for a triggered run with a progress bar and its tasks' logs.

use std::{
    collections::BTreeMap,
    io::{IsTerminal, Write},
    process::ExitCode,
    thread,
    time::{Duration, Instant},
};

use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::{json, Value};

use super::{
    args::{DagArgs, DagsListArgs, DagsRemote, PushArgs, TriggerArgs},
    client::{segment, Client, ClientError},
    json_object,
    output::{self, Column},
    page_query,
    tasks::{self, LogCursor},
    RemoteError,
};

const DAG_COLUMNS: &[Column] = &[
    ("DAG", "dag_id"),
    ("PAUSED", "is_paused"),
    ("SCHEDULE", "timetable_summary"),
    ("NEXT RUN", "next_dagrun_logical_date"),
    ("OWNERS", "owners"),
    ("TAGS", "tags"),
    ("IMPORT ERRORS", "has_import_errors"),
];

const DAG_FIELDS: &[&str] = &[
    "dag_id",
    "description",
    "is_paused",
    "timetable_summary",
    "next_dagrun_logical_date",
    "max_active_runs",
    "max_active_tasks",
    "owners",
    "tags",
    "fileloc",
    "has_import_errors",
    "last_parsed_time",
];

/// Fields shown for a run.
pub const RUN_FIELDS: &[&str] =
    &["dag_id", "dag_run_id", "state", "run_type", "logical_date", "run_after", "start_date", "end_date", "conf"];

/// Runs a remote `gust dags` command.
pub fn run(command: DagsRemote, out: &mut dyn Write) -> Result<ExitCode, RemoteError> {
    let client = Client::from_config()?;
    match command {
        DagsRemote::List(args) => list(&client, &args, out)?,
        DagsRemote::Get(args) => {
            let dag = client.get(&dag_path(&args.dag), &[])?;
            output::object(out, args.out.output, &dag, DAG_FIELDS)?;
        }
        DagsRemote::Pause(args) => set_paused(&client, &args, true, out)?,
        DagsRemote::Unpause(args) => set_paused(&client, &args, false, out)?,
        DagsRemote::Trigger(args) => return trigger(&client, &args, out),
        DagsRemote::Push(args) => return push(&client, &args, out),
    }
    Ok(ExitCode::SUCCESS)
}

/// Pushes each file; a file the API refuses (not a DAG, a bad name) is reported and
/// the others still go; a failure to reach or use the API stops at once.
fn push(client: &Client, args: &PushArgs, out: &mut dyn Write) -> Result<ExitCode, RemoteError> {
    let mut refused = 0;
    for path in &args.files {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let yaml = std::fs::read_to_string(path)
            .map_err(|e| RemoteError::Argument(format!("{}: cannot read the file: {e}", path.display())))?;
        match client.put_yaml(&format!("/api/v2/gust/dagFiles/{}", segment(&name)), &yaml) {
            Ok(file) => {
                let dag = file["dag_id"].as_str().unwrap_or("?");
                let version = file["version"].as_i64().unwrap_or(0);
                writeln!(out, "pushed {}: DAG {dag}, version {version}", path.display())?;
            }
            Err(ClientError::Api { status, detail }) if status.is_client_error() => {
                refused += 1;
                writeln!(out, "refused {}: {detail}", path.display())?;
            }
            Err(other) => return Err(other.into()),
        }
    }
    if refused > 0 {
        writeln!(out, "{refused} of {} file(s) refused; nothing of those was stored", args.files.len())?;
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn dag_path(dag: &str) -> String {
    format!("/api/v2/dags/{}", segment(dag))
}

fn list(client: &Client, args: &DagsListArgs, out: &mut dyn Write) -> Result<(), RemoteError> {
    let mut query = page_query(&args.page);
    query.extend(args.pattern.clone().map(|pattern| ("dag_id_pattern", pattern)));
    query.extend(args.paused.map(|paused| ("paused", paused.to_string())));
    let body = client.get("/api/v2/dags", &query)?;
    output::list(out, args.out.output, &body, "dags", DAG_COLUMNS)?;
    Ok(())
}

fn set_paused(client: &Client, args: &DagArgs, paused: bool, out: &mut dyn Write) -> Result<(), RemoteError> {
    let dag = client.send(Method::PATCH, &dag_path(&args.dag), &json!({"is_paused": paused}))?;
    let message = format!("DAG {} {}", args.dag, if paused { "paused" } else { "unpaused" });
    output::done(out, args.out.output, &dag, &message)?;
    Ok(())
}

/// `gust dags trigger`: the new run; with `--wait`/`--follow`, its end, exit 0 for success and 1 for failed.
fn trigger(client: &Client, args: &TriggerArgs, out: &mut dyn Write) -> Result<ExitCode, RemoteError> {
    let mut body = json!({
        "logical_date": args.logical_date,
        "conf": json_object("--conf", args.conf.as_deref())?,
    });
    if let Some(run_id) = &args.run_id {
        body["dag_run_id"] = json!(run_id);
    }
    let created = client.send(Method::POST, &format!("{}/dagRuns", dag_path(&args.dag)), &body)?;
    let run_id = output::text(&created["dag_run_id"]);
    if client.get(&dag_path(&args.dag), &[])?["is_paused"] == json!(true) {
        eprintln!("gust: warning: DAG {0} is paused; the run waits until `gust dags unpause {0}`", args.dag);
    }
    if !(args.wait || args.follow) {
        output::object(out, args.out.output, &created, RUN_FIELDS)?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.out.output == output::Output::Table {
        writeln!(out, "Triggered {} run {run_id}", args.dag)?;
        out.flush()?;
    }
    let finished = wait(client, args, &run_id, out)?;
    let state = output::text(&finished["state"]);
    let mut message = format!("Run {run_id} of {}: {state}", args.dag);
    if state != "success" {
        let failed = tasks::task_instances(client, &args.dag, &run_id, &["failed".into()])?;
        let failed: Vec<String> =
            failed["task_instances"].as_array().into_iter().flatten().map(|ti| output::text(&ti["task_id"])).collect();
        if let Some(first) = failed.first() {
            message.push_str(&format!(
                " (failed: {}; its log: gust tasks logs {} '{run_id}' {first})",
                failed.join(", "),
                args.dag
            ));
        }
    }
    output::done(out, args.out.output, &finished, &message)?;
    Ok(if state == "success" { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Polls a run until it is `success` or `failed` and returns it; shows tasks done/total on a
/// terminal (standard error), with `--follow` prints each task's new log lines, `[task] line`,
/// and gives up after `--timeout`.
fn wait(client: &Client, args: &TriggerArgs, run_id: &str, out: &mut dyn Write) -> Result<Value, RemoteError> {
    let (dag, follow) = (args.dag.as_str(), args.follow);
    let started = Instant::now();
    let bar = if std::io::stderr().is_terminal() { ProgressBar::new(0) } else { ProgressBar::hidden() };
    if let Ok(style) = ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} tasks done · run {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    let mut cursors: BTreeMap<(String, i64), (u64, LogCursor)> = BTreeMap::new();
    loop {
        // The run first, then the tasks and logs: once it reads finished, every line is there.
        let run = client.get(&tasks::run_path(dag, run_id), &[])?;
        let state = output::text(&run["state"]);
        let instances = tasks::task_instances(client, dag, run_id, &[])?;
        let instances = instances["task_instances"].as_array().cloned().unwrap_or_default();
        let done = instances.iter().filter(|ti| tasks::is_finished(&output::text(&ti["state"]))).count();
        bar.set_length(instances.len() as u64);
        bar.set_position(done as u64);
        bar.set_message(state.clone());
        if follow {
            for ti in &instances {
                print_new_lines(client, dag, run_id, ti, &mut cursors, &bar, out)?;
            }
        }
        if state == "success" || state == "failed" {
            bar.finish_and_clear();
            return Ok(run);
        }
        if let Some(timeout) = args.timeout.filter(|timeout| started.elapsed() >= *timeout) {
            bar.finish_and_clear();
            return Err(RemoteError::Timeout(format!(
                "gave up waiting after {}: run {run_id} of {dag} is {state} ({done}/{} tasks done) and goes on; \
                 see gust runs get {dag} '{run_id}'",
                humantime::format_duration(timeout),
                instances.len()
            )));
        }
        thread::sleep(tasks::POLL);
    }
}

/// Prints a task instance's log lines written since the last call, from its current try.
fn print_new_lines(
    client: &Client,
    dag: &str,
    run_id: &str,
    ti: &Value,
    cursors: &mut BTreeMap<(String, i64), (u64, LogCursor)>,
    bar: &ProgressBar,
    out: &mut dyn Write,
) -> Result<(), RemoteError> {
    let try_number = ti["try_number"].as_u64().unwrap_or(0);
    if try_number == 0 {
        return Ok(());
    }
    let task = output::text(&ti["task_id"]);
    let map_index = ti["map_index"].as_i64().unwrap_or(-1);
    let label = if map_index >= 0 { format!("{task}[{map_index}]") } else { task.clone() };
    let entry = cursors
        .entry((task.clone(), map_index))
        .or_insert_with(|| (try_number, LogCursor::new(dag, run_id, &task, map_index, try_number)));
    let mut lines = entry.1.read_new(client)?;
    if entry.0 != try_number {
        // A retry: the rest of the old try is read above; the new one starts here.
        *entry = (try_number, LogCursor::new(dag, run_id, &task, map_index, try_number));
        lines.push(format!("--- try {try_number} ---"));
        lines.extend(entry.1.read_new(client)?);
    }
    bar.suspend(|| -> std::io::Result<()> {
        for line in &lines {
            writeln!(out, "[{label}] {line}")?;
        }
        out.flush()
    })?;
    Ok(())
}
