//! `gust runs list|get|clear`: DAG runs over the API.

use std::io::Write;

use reqwest::Method;
use serde_json::json;

use super::{
    args::{RunClearArgs, RunsCommand, RunsListArgs},
    client::{segment, Client},
    dags::RUN_FIELDS,
    output::{self, Column},
    page_query,
    tasks::{run_path, TASK_COLUMNS},
    RemoteError,
};

const RUN_COLUMNS: &[Column] = &[
    ("DAG", "dag_id"),
    ("RUN", "dag_run_id"),
    ("STATE", "state"),
    ("TYPE", "run_type"),
    ("LOGICAL DATE", "logical_date"),
    ("START", "start_date"),
    ("END", "end_date"),
];

/// Runs a `gust runs` command.
pub fn run(command: RunsCommand, client: &Client, out: &mut dyn Write) -> Result<(), RemoteError> {
    match command {
        RunsCommand::List(args) => list(client, &args, out),
        RunsCommand::Get(args) => {
            let run = client.get(&run_path(&args.dag, &args.run), &[])?;
            Ok(output::object(out, args.out.output, &run, RUN_FIELDS)?)
        }
        RunsCommand::Clear(args) => clear(client, &args, out),
    }
}

fn list(client: &Client, args: &RunsListArgs, out: &mut dyn Write) -> Result<(), RemoteError> {
    let dag = args.dag.as_deref().map_or_else(|| "~".to_string(), segment);
    let mut query = page_query(&args.page);
    query.push(("order_by", "-run_after".into()));
    query.extend(args.state.iter().map(|state| ("state", state.clone())));
    let body = client.get(&format!("/api/v2/dags/{dag}/dagRuns"), &query)?;
    output::list(out, args.out.output, &body, "dag_runs", RUN_COLUMNS)?;
    Ok(())
}

/// `gust runs clear`: with `--dry-run` the API answers the task instances it would reset, else the run.
fn clear(client: &Client, args: &RunClearArgs, out: &mut dyn Write) -> Result<(), RemoteError> {
    let (dag, run, format) = (&args.run.dag, &args.run.run, args.run.out.output);
    let body = json!({"dry_run": args.dry_run, "only_failed": args.only_failed});
    let answer = client.send(Method::POST, &format!("{}/clear", run_path(dag, run)), &body)?;
    if args.dry_run {
        if format == output::Output::Table {
            writeln!(out, "Would clear these task instances of run {run}:")?;
        }
        output::list(out, format, &answer, "task_instances", &TASK_COLUMNS[..4])?;
    } else {
        let message = format!("Cleared run {run} of {dag}; it is {}", output::text(&answer["state"]));
        output::done(out, format, &answer, &message)?;
    }
    Ok(())
}
