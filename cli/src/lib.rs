//! The `gust` command line: local commands for DAG authors that need no
//! broker, daemon or database.
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
//!   - [`dags::next_runs`]: upcoming runs from the scheduler's schedule code.
//! - [`tasks`]: `gust tasks render`, with the scheduler's template rendering.
//! - [`policy`]: `gust-policy.yaml`, a pure check of a parsed DAG.
//! - [`schema`]: `gust schema`, the JSON Schema of DAG files.
//! - [`remote`]: `gust login` and the commands over the HTTP API (`dags
//!   list|trigger …`, `runs`, `tasks logs …`, `import-errors`, `pools`,
//!   `variables`, `backfill`, `users`); its own Layout says more.
//!
//! Each module has its own error type; main.rs alone uses anyhow.

pub mod args;
pub mod dags;
pub mod files;
pub mod policy;
pub mod remote;
pub mod schema;
pub mod tasks;

use std::{io::Write, process::ExitCode};

use args::{Cli, Command, DagsCommand, Shell, TasksCommand};
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
    /// A command-line value is malformed.
    #[error("{0}")]
    Argument(String),
    /// Writing to standard output failed.
    #[error("cannot write the output: {0}")]
    Write(#[from] std::io::Error),
    /// A remote command failed.
    #[error(transparent)]
    Remote(#[from] remote::RemoteError),
}

/// Runs one parsed command line, writing its output to standard output; the exit code on success.
pub fn run(cli: Cli) -> Result<ExitCode, CliError> {
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
