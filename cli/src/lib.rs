//! The `gust` command line: local commands for DAG authors that need no
//! broker, daemon or database; local runs (`dags test`, `tasks test`) on a
//! throwaway database; and the whole engine in one process (`standalone`).
//!
//! # Layout
//!
//! - [`args`]: every command, flag and default, as clap reads them (main.rs
//!   parses; [`run`] dispatches).
//! - [`files`]: the DAG folder (from `--dags-folder` or the settings), the DAG
//!   files in it as the scheduler lists them, one DAG by `dag_id` or path.
//! - [`dags`]: `gust dags …`, one module a command:
//!   - [`dags::validate`]: the scheduler's parser and validator, template
//!     syntax, duplicate `dag_id`s, and the [`policy`] with `--strict`;
//!     findings as text, JSON or GitHub annotations;
//!   - [`dags::show`]: the task graph as text, Graphviz or Mermaid;
//!   - [`dags::next_runs`]: upcoming runs from the scheduler's schedule code;
//!   - [`dags::test_run`]: `gust dags test`, one run with the scheduler's and
//!     the worker's code on a throwaway database and an in-process broker.
//! - [`tasks`]: `gust tasks render`, with the scheduler's template rendering.
//! - [`task_test`]: `gust tasks test`, one task through the worker's operators, recording nothing.
//! - [`standalone`]: `gust standalone`, scheduler, worker and webapi in one process.
//! - [`db_clean`]: `gust db clean`, deleting old runs and records straight in the database.
//! - [`policy`]: `gust-policy.yaml`, a pure check of a parsed DAG.
//! - [`schema`]: `gust schema`, the JSON Schema of DAG files.
//! - [`remote`]: `gust login` and the commands over the HTTP API (`dags
//!   list|trigger …`, `runs`, `tasks logs …`, `import-errors`, `pools`,
//!   `variables`, `backfill`, `users`); its own Layout says more.
//!
//! Each module has its own error type; main.rs prints it (each message says its cause).

pub mod args;
pub mod dags;
pub mod db_clean;
pub mod files;
pub mod policy;
pub mod remote;
pub mod schema;
pub mod standalone;
pub mod task_test;
pub mod tasks;

use std::{io::Write, process::ExitCode};

use args::{Cli, Command, DagsCommand, DbCommand, Shell, TasksCommand};
use clap::CommandFactory;

/// Why a command could not do its work (bad input is reported, not raised, by `dags validate`).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Finding or reading DAG files.
    #[error(transparent)]
    Files(#[from] files::FilesError),
    /// `dags validate` could not run.
    #[error(transparent)]
    Validate(#[from] dags::validate::ValidateError),
    /// `tasks render` could not render.
    #[error(transparent)]
    Render(#[from] tasks::RenderError),
    /// `dags test` could not run the DAG.
    #[error(transparent)]
    DagTest(#[from] dags::test_run::DagTestError),
    /// `tasks test` could not run the task.
    #[error(transparent)]
    TaskTest(#[from] task_test::TaskTestError),
    /// `standalone` could not start or a component failed.
    #[error(transparent)]
    Standalone(#[from] standalone::StandaloneError),
    /// A command-line value is malformed.
    #[error("{0}")]
    Argument(String),
    /// Writing to standard output failed.
    #[error("cannot write the output: {0}")]
    Write(#[from] std::io::Error),
    /// A remote command failed.
    #[error(transparent)]
    Remote(#[from] remote::RemoteError),
    /// `db clean` could not clean.
    #[error(transparent)]
    Clean(#[from] db_clean::CleanError),
}

/// Runs one parsed command line, writing its output to standard output; the exit code on success.
pub fn run(cli: Cli) -> Result<ExitCode, CliError> {
    // The commands that run tasks print from several threads: they lock standard output per line.
    match &cli.command {
        Command::Dags(DagsCommand::Test(args)) => {
            let succeeded = runtime()?.block_on(dags::test_run::run(args, &mut std::io::stdout()))?;
            return Ok(if succeeded { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
        Command::Tasks(TasksCommand::Test(args)) => {
            let succeeded = runtime()?.block_on(task_test::run(args))?;
            return Ok(if succeeded { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
        Command::Standalone => {
            runtime()?.block_on(standalone::run())?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Db(DbCommand::Clean(args)) => {
            let outcome = runtime()?.block_on(db_clean::run(args, &mut std::io::stdout()))?;
            return Ok(match outcome {
                db_clean::Outcome::Done | db_clean::Outcome::Counted => ExitCode::SUCCESS,
                db_clean::Outcome::Declined => ExitCode::FAILURE,
            });
        }
        _ => {}
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match cli.command {
        Command::Dags(DagsCommand::Validate(args)) => {
            let all_valid = dags::validate::run(&args, &mut out)?;
            return Ok(if all_valid { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
        Command::Dags(DagsCommand::Show(args)) => {
            let loaded = files::load(&args.dag, &args.folder)?;
            out.write_all(dags::show::draw(&loaded.dag, args.format).as_bytes())?;
        }
        Command::Dags(DagsCommand::NextRuns(args)) => {
            let loaded = files::load(&args.dag, &args.folder)?;
            let after = match &args.after {
                Some(text) => files::parse_instant(text, loaded.dag.timezone)
                    .map_err(|e| CliError::Argument(format!("--after: {e}")))?,
                None => chrono::Utc::now(),
            };
            out.write_all(dags::next_runs::table(&loaded.dag, after, args.count).as_bytes())?;
        }
        Command::Dags(DagsCommand::Remote(command)) => return Ok(remote::dags::run(command, &mut out)?),
        Command::Tasks(TasksCommand::Remote(command)) => return Ok(remote::tasks::run(command, &mut out)?),
        Command::Remote(command) => return Ok(remote::run(command, &mut out)?),
        Command::Tasks(TasksCommand::Render(args)) => out.write_all(tasks::render(&args)?.as_bytes())?,
        Command::Dags(DagsCommand::Test(_))
        | Command::Tasks(TasksCommand::Test(_))
        | Command::Standalone
        | Command::Db(_) => {
            unreachable!("handled before standard output is locked")
        }
        Command::Schema => out.write_all(schema::schema_text().as_bytes())?,
        Command::Completions { shell } => {
            let shell = match shell {
                Shell::Bash => clap_complete::Shell::Bash,
                Shell::Zsh => clap_complete::Shell::Zsh,
                Shell::Fish => clap_complete::Shell::Fish,
            };
            clap_complete::generate(shell, &mut Cli::command(), "gust", &mut out);
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The runtime of the commands that run the engine's code (`dags test`, `tasks test`).
fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}
