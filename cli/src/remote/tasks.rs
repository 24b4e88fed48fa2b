//! `gust tasks list|logs|clear|mark`, and [`LogCursor`], which reads a
//! try's log line by line as it grows (also for `gust dags trigger --follow`).

use std::{io::Write, process::ExitCode, thread, time::Duration};

use reqwest::Method;
use serde_json::{json, Value};

use super::{
    args::{LogsArgs, MarkArgs, MarkState, TasksClearArgs, TasksListArgs, TasksRemote},
    client::{segment, Client, ClientError},
    output::{self, Column},
    RemoteError,
};

/// How often `--follow` asks for new lines.
pub const POLL: Duration = Duration::from_secs(1);

/// Lines per log page with `full_content=true` (the API's page size).
const FULL_PAGE: usize = 100_000;

/// Columns of a task instance list.
pub const TASK_COLUMNS: &[Column] = &[
    ("TASK", "task_id"),
    ("MAP", "map_index"),
    ("STATE", "state"),
    ("TRY", "try_number"),
    ("OPERATOR", "operator"),
    ("START", "start_date"),
    ("END", "end_date"),
    ("DURATION", "duration"),
];

/// Task states after which a task instance writes no more log lines (until it is cleared).
pub fn is_finished(state: &str) -> bool {
    matches!(state, "success" | "failed" | "skipped" | "upstream_failed" | "removed")
}

/// Runs a remote `gust tasks` command.
pub fn run(command: TasksRemote, out: &mut dyn Write) -> Result<ExitCode, RemoteError> {
    let client = Client::from_config()?;
    match command {
        TasksRemote::List(args) => list(&client, &args, out)?,
        TasksRemote::Logs(args) => logs(&client, &args, out)?,
        TasksRemote::Clear(args) => clear(&client, &args, out)?,
        TasksRemote::Mark(args) => mark(&client, &args, out)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The API path of a run.
pub fn run_path(dag: &str, run: &str) -> String {
    format!("/api/v2/dags/{}/dagRuns/{}", segment(dag), segment(run))
}

/// Every task instance of a run (up to the API's 1000).
pub fn task_instances(client: &Client, dag: &str, run: &str, states: &[String]) -> Result<Value, ClientError> {
    let mut query = vec![("limit", "1000".to_string())];
    query.extend(states.iter().map(|state| ("state", state.clone())));
    client.get(&format!("{}/taskInstances", run_path(dag, run)), &query)
}

fn list(client: &Client, args: &TasksListArgs, out: &mut dyn Write) -> Result<(), RemoteError> {
    let body = task_instances(client, &args.run.dag, &args.run.run, &args.state)?;
    output::list(out, args.run.out.output, &body, "task_instances", TASK_COLUMNS)?;
    Ok(())
}

/// Reads one try's log from where it stopped last time.
#[derive(Debug, Clone)]
pub struct LogCursor {
    path: String,
    map_index: i64,
    token: Option<String>,
}

impl LogCursor {
    /// A cursor at the start of try `try_number` of a task instance.
    pub fn new(dag: &str, run: &str, task: &str, map_index: i64, try_number: u64) -> LogCursor {
        let path = format!("{}/taskInstances/{}/logs/{try_number}", run_path(dag, run), segment(task));
        LogCursor { path, map_index, token: None }
    }

    /// The lines written since the last call (all of them the first time).
    pub fn read_new(&mut self, client: &Client) -> Result<Vec<String>, ClientError> {
        let mut lines = Vec::new();
        loop {
            let mut query = vec![("full_content", "true".to_string()), ("map_index", self.map_index.to_string())];
            query.extend(self.token.clone().map(|token| ("token", token)));
            let page = client.get(&self.path, &query)?;
            let content = page["content"].as_array().map(Vec::as_slice).unwrap_or_default();
            lines.extend(content.iter().map(|line| output::text(&line["event"])));
            if let Some(token) = page["continuation_token"].as_str() {
                self.token = Some(token.to_string());
            }
            if content.len() < FULL_PAGE {
                return Ok(lines);
            }
        }
    }
}

/// The path of one task instance.
fn task_path(dag: &str, run: &str, task: &str) -> String {
    format!("{}/taskInstances/{}", run_path(dag, run), segment(task))
}

/// One task instance; a mapped one (`map_index` 0, 1, …) is looked up in the run's list, as the
/// API's route for one task instance serves the unmapped one.
fn instance(client: &Client, dag: &str, run: &str, task: &str, map_index: i64) -> Result<Value, ClientError> {
    if map_index < 0 {
        return client.get(&task_path(dag, run, task), &[]);
    }
    let query = [("task_id", task.to_string()), ("map_index", map_index.to_string())];
    let list = client.get(&format!("{}/taskInstances", run_path(dag, run)), &query)?;
    match list["task_instances"].get(0) {
        Some(instance) => Ok(instance.clone()),
        None => Err(ClientError::NotFound(format!(
            "task instance `{task}` with map_index {map_index} not found in DAG run `{run}` of DAG `{dag}`"
        ))),
    }
}

/// `gust tasks logs`: the try's lines; with `--follow`, new ones until the task instance has finished.
fn logs(client: &Client, args: &LogsArgs, out: &mut dyn Write) -> Result<(), RemoteError> {
    let read_instance = || instance(client, &args.dag, &args.run, &args.task, args.map_index);
    let mut instance = loop {
        match read_instance() {
            // A run that has not started has no task instances yet: following waits for them.
            Err(ClientError::NotFound(_)) if args.follow => {
                if client.get(&run_path(&args.dag, &args.run), &[])?["state"] != "queued" {
                    // It may have started (creating its task instances) since the first look: one more.
                    break read_instance()?;
                }
                thread::sleep(POLL);
            }
            answer => break answer?,
        }
    };
    let mut try_number = args.try_number.map(u64::from).unwrap_or_else(|| instance["try_number"].as_u64().unwrap_or(0));
    if try_number == 0 && args.follow {
        // Not started yet: wait for its first try.
        while instance["try_number"].as_u64().unwrap_or(0) == 0 && !is_finished(&output::text(&instance["state"])) {
            thread::sleep(POLL);
            instance = read_instance()?;
        }
        try_number = instance["try_number"].as_u64().unwrap_or(0).max(1);
    }
    let mut cursor = LogCursor::new(&args.dag, &args.run, &args.task, args.map_index, try_number.max(1));
    loop {
        for line in cursor.read_new(client)? {
            writeln!(out, "{line}")?;
        }
        if !args.follow {
            return Ok(());
        }
        out.flush()?;
        let current = instance["try_number"].as_u64().unwrap_or(0);
        if args.try_number.is_none() && current > try_number {
            // A retry started: finish the old try (read above) and go on with the new one.
            try_number = current;
            cursor = LogCursor::new(&args.dag, &args.run, &args.task, args.map_index, try_number);
            writeln!(out, "--- try {try_number} ---")?;
            continue;
        }
        if is_finished(&output::text(&instance["state"])) || args.try_number.is_some_and(|n| u64::from(n) < current) {
            return Ok(());
        }
        thread::sleep(POLL);
        instance = read_instance()?;
    }
}

fn clear(client: &Client, args: &TasksClearArgs, out: &mut dyn Write) -> Result<(), RemoteError> {
    let body = json!({
        "dry_run": args.dry_run,
        "dag_run_id": args.run,
        "task_ids": args.tasks,
        "include_downstream": args.downstream,
        "only_failed": args.only_failed,
    });
    let answer =
        client.send(Method::POST, &format!("/api/v2/dags/{}/clearTaskInstances", segment(&args.dag)), &body)?;
    changed(out, args.out.output, &answer, if args.dry_run { "Would clear" } else { "Cleared" })
}

fn mark(client: &Client, args: &MarkArgs, out: &mut dyn Write) -> Result<(), RemoteError> {
    let state = match args.state {
        MarkState::Success => "success",
        MarkState::Failed => "failed",
        MarkState::Skipped => "skipped",
    };
    let body = json!({"new_state": state, "include_upstream": args.upstream, "include_downstream": args.downstream});
    let mut path = task_path(&args.dag, &args.run, &args.task);
    if args.dry_run {
        path.push_str("/dry_run");
    }
    let answer = client.send(Method::PATCH, &path, &body)?;
    let verb = if args.dry_run { format!("Would mark {state}") } else { format!("Marked {state}") };
    changed(out, args.out.output, &answer, &verb)
}

/// Prints the task instances a clear or mark changed, with `verb` and their count above the table.
fn changed(out: &mut dyn Write, format: output::Output, answer: &Value, verb: &str) -> Result<(), RemoteError> {
    if format == output::Output::Table {
        let count = answer["task_instances"].as_array().map_or(0, Vec::len);
        writeln!(out, "{verb}: {count} task instance(s)")?;
    }
    output::list(out, format, answer, "task_instances", &TASK_COLUMNS[..4])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_states_are_airflows_terminal_ones() {
        for state in ["success", "failed", "skipped", "upstream_failed", "removed"] {
            assert!(is_finished(state), "{state}");
        }
        for state in ["", "none", "scheduled", "queued", "running", "up_for_retry", "up_for_reschedule"] {
            assert!(!is_finished(state), "{state}");
        }
    }

    #[test]
    fn log_paths_escape_run_ids() {
        let cursor = LogCursor::new("etl", "manual__2026-01-01T00:00:00+00:00", "load", -1, 2);
        assert_eq!(
            cursor.path,
            "/api/v2/dags/etl/dagRuns/manual__2026-01-01T00%3A00%3A00%2B00%3A00/taskInstances/load/logs/2"
        );
    }
}
