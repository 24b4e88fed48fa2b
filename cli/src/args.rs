//! The command line of `gust`, as clap reads it: every command, flag and default.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

pub use gust_shared::cli::VERSION;

/// `gust`: validate, inspect and render DAG files on your machine, and drive a gust deployment over its API.
#[derive(Debug, Parser)]
#[command(name = "gust", version = VERSION, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The command families.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check, draw and schedule DAG files; list, trigger and pause the DAGs of a deployment.
    #[command(subcommand)]
    Dags(DagsCommand),
    /// Look at one task of a DAG; list, follow the logs of, clear and mark task instances of a deployment.
    #[command(subcommand)]
    Tasks(TasksCommand),
    /// Print the JSON Schema of DAG files (for editors and pre-commit hooks).
    Schema,
    /// Run the whole engine in this process: migrate, make an admin, then scheduler, worker and webapi.
    Standalone,
    /// Look after the metadata database (GUST__DATABASE__URL): delete old rows.
    #[command(subcommand)]
    Db(DbCommand),
    /// Print a shell completion script.
    Completions {
        /// The shell to complete in.
        shell: Shell,
    },
    /// Commands over a gust deployment's HTTP API (login, runs, pools, …).
    #[command(flatten)]
    Remote(crate::remote::args::RemoteCommand),
}

/// Shells `gust completions` writes scripts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// GNU bash.
    Bash,
    /// Z shell.
    Zsh,
    /// fish.
    Fish,
}

/// `gust db …`.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Delete finished runs (with their task instances, tries, logs and XComs), dead letters and event
    /// log records older than --before, in short batches; queued and running runs are never touched.
    Clean(DbCleanArgs),
}

/// `gust db clean`.
#[derive(Debug, Clone, clap::Args)]
pub struct DbCleanArgs {
    /// Delete what is older than this: a time (2026-01-01, 2026-01-01T06:00:00Z; UTC unless it has an
    /// offset) or an age (90d: that long ago).
    #[arg(long, value_name = "TIMESTAMP")]
    pub before: String,
    /// Only this DAG's runs, dead letters and event log records (repeat for more) [default: every DAG].
    #[arg(long = "dag-id", value_name = "DAG_ID")]
    pub dag_id: Vec<String>,
    /// Count what would be deleted, per table, and delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete without asking (needed when standard input is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Runs (or dead letters, or event log records) deleted per transaction.
    #[arg(long, value_name = "N", default_value_t = gust_shared::settings::DEFAULT_CLEAN_BATCH)]
    pub batch_size: i64,
}

/// Where the DAG files are: the folder the scheduler watches.
#[derive(Debug, Clone, clap::Args)]
pub struct DagsFolder {
    /// Folder of DAG files [default: GUST__DAGS__FOLDER, dags.folder in gust.toml, or ./dags].
    #[arg(long, env = "GUST__DAGS__FOLDER", global = true, value_name = "DIR")]
    pub dags_folder: Option<PathBuf>,
}

/// `gust dags …`.
#[derive(Debug, Subcommand)]
pub enum DagsCommand {
    /// Parse and validate DAG files with the scheduler's own parser; exit 1 when any is invalid.
    Validate(ValidateArgs),
    /// Draw a DAG's tasks and dependencies.
    Show(ShowArgs),
    /// List the next scheduled runs of a DAG, in its timezone and in UTC.
    NextRuns(NextRunsArgs),
    /// Run one whole DAG run on this machine with the daemons' code, on a throwaway database and an in-process broker; exit 1 when it fails.
    Test(DagTestArgs),
    /// DAGs of a deployment, over its HTTP API.
    #[command(flatten)]
    Remote(crate::remote::args::DagsRemote),
}

/// The run a command renders or runs tasks for, as a manual trigger would make it.
#[derive(Debug, Clone, clap::Args)]
pub struct RunInputArgs {
    /// The run's logical date (RFC 3339, or a date/time in the DAG's timezone) [default: none, as a manual trigger].
    #[arg(long, value_name = "DATE")]
    pub logical_date: Option<String>,
    /// The run's conf, a JSON object, checked against the DAG's params as a trigger checks it.
    #[arg(long, value_name = "JSON")]
    pub conf: Option<String>,
}

/// `gust dags test`.
#[derive(Debug, clap::Args)]
pub struct DagTestArgs {
    /// A dag_id in the DAG folder, or the path of a DAG file.
    pub dag: String,
    /// Where the DAG folder is.
    #[command(flatten)]
    pub folder: DagsFolder,
    /// The run's logical date and conf.
    #[command(flatten)]
    pub run: RunInputArgs,
    /// Also write the task instances as JUnit XML to this file (for CI test reports).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Give up when the run has not finished after this long (`30s`, `10m`).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, default_value = "30m")]
    pub timeout: Option<std::time::Duration>,
}

/// `gust dags validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// DAG files or folders of them [default: the DAG folder].
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Where the DAG folder is.
    #[command(flatten)]
    pub folder: DagsFolder,
    /// How findings are written.
    #[arg(long, value_enum, default_value_t = ValidateFormat::Text)]
    pub format: ValidateFormat,
    /// Also apply the policy file (owner, tags, retries, queues, operators).
    #[arg(long)]
    pub strict: bool,
    /// Policy file for --strict [default: gust-policy.yaml next to the DAG folder].
    #[arg(long, value_name = "FILE", requires = "strict")]
    pub policy: Option<PathBuf>,
}

/// Output formats of `gust dags validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValidateFormat {
    /// One line a finding, with its fix, for people.
    Text,
    /// One JSON document, for scripts.
    Json,
    /// GitHub Actions annotations (`::error file=…,line=…::…`).
    Github,
}

/// `gust dags show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// A dag_id in the DAG folder, or the path of a DAG file.
    pub dag: String,
    /// Where the DAG folder is.
    #[command(flatten)]
    pub folder: DagsFolder,
    /// How the graph is drawn.
    #[arg(long, value_enum, default_value_t = ShowFormat::Ascii)]
    pub format: ShowFormat,
}

/// Drawings `gust dags show` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShowFormat {
    /// Tasks by level, each with its upstreams, for the terminal.
    Ascii,
    /// Graphviz.
    Dot,
    /// A Mermaid flowchart (renders in GitHub Markdown).
    Mermaid,
}

/// `gust dags next-runs`.
#[derive(Debug, clap::Args)]
pub struct NextRunsArgs {
    /// A dag_id in the DAG folder, or the path of a DAG file.
    pub dag: String,
    /// Where the DAG folder is.
    #[command(flatten)]
    pub folder: DagsFolder,
    /// How many runs to list.
    #[arg(short = 'n', long = "count", default_value_t = 10)]
    pub count: usize,
    /// List the runs due after this instant instead of now (RFC 3339, or a date/time in the DAG's timezone).
    #[arg(long, value_name = "DATETIME")]
    pub after: Option<String>,
}

/// `gust tasks …`.
#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// Print a task's arguments rendered as the scheduler renders them before dispatch.
    Render(RenderArgs),
    /// Run one task's operator here with rendered arguments; print its log and XCom, record nothing.
    Test(TaskTestArgs),
    /// Task instances of a deployment, over its HTTP API.
    #[command(flatten)]
    Remote(crate::remote::args::TasksRemote),
}

/// One task of a DAG, for a run as a manual trigger would make it.
#[derive(Debug, Clone, clap::Args)]
pub struct TaskOfRunArgs {
    /// A dag_id in the DAG folder, or the path of a DAG file.
    pub dag: String,
    /// The task's id.
    pub task: String,
    /// Where the DAG folder is.
    #[command(flatten)]
    pub folder: DagsFolder,
    /// The run's logical date and conf.
    #[command(flatten)]
    pub run: RunInputArgs,
}

/// `gust tasks test`.
#[derive(Debug, clap::Args)]
pub struct TaskTestArgs {
    /// The task and the run it is for.
    #[command(flatten)]
    pub target: TaskOfRunArgs,
    /// Which element of a mapped task to run [default: 0].
    #[arg(long, value_name = "N")]
    pub map_index: Option<usize>,
}

/// `gust tasks render`.
#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// The task and the run it is for.
    #[command(flatten)]
    pub target: TaskOfRunArgs,
    /// Output format of the rendered arguments.
    #[arg(long, value_enum, default_value_t = RenderFormat::Yaml)]
    pub output: RenderFormat,
}

/// Output formats of `gust tasks render`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RenderFormat {
    /// YAML, as in a DAG file.
    Yaml,
    /// JSON, as in the task message.
    Json,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_version_names_the_commit() {
        assert!(VERSION.starts_with(env!("CARGO_PKG_VERSION")));
        assert!(VERSION.contains("(commit "), "{VERSION}");
    }
}
