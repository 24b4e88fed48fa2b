//! The remote commands as clap reads them: their flags and defaults.
//!
//! [`RemoteCommand`] is flattened into `gust`'s top level, [`DagsRemote`]
//! into `gust dags`, [`TasksRemote`] into `gust tasks`.

use clap::{Subcommand, ValueEnum};

use super::output::Output;

/// How a remote command prints its answer.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct OutputArg {
    /// Output format: a table for people, or the API's JSON document as JSON or YAML for scripts.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// Paging of a list.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct PageArg {
    /// Most entries to list (the API caps it at 1000).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Entries to skip.
    #[arg(long, default_value_t = 0)]
    pub offset: u32,
}

/// The remote commands of `gust`'s top level.
#[derive(Debug, Subcommand)]
pub enum RemoteCommand {
    /// Log in to a gust API and store its URL and your token in the config file (mode 0600).
    Login(LoginArgs),
    /// Forget the stored token.
    Logout,
    /// List DAG runs, show one, clear one (over the API).
    #[command(subcommand)]
    Runs(RunsCommand),
    /// List DAG files that failed to import; exit 1 when there are any (a post-deploy gate).
    ImportErrors(OutputArg),
    /// List, show, create or change, and delete pools (changes need the admin role).
    #[command(subcommand)]
    Pools(PoolsCommand),
    /// List, show, set and delete variables (changes need the admin role).
    #[command(subcommand)]
    Variables(VariablesCommand),
    /// Run a DAG over past data intervals: create, list, pause, unpause, cancel backfills.
    #[command(subcommand)]
    Backfill(BackfillCommand),
    /// List, create and delete users (admin role).
    #[command(subcommand)]
    Users(UsersCommand),
}

/// `gust login`.
#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// Base URL of the gust API [default: GUST_API_URL, else the stored one].
    #[arg(long, env = "GUST_API_URL")]
    pub url: Option<String>,
    /// The user to log in as [default: the stored one].
    #[arg(long, short = 'u')]
    pub username: Option<String>,
    /// Read the password from standard input (also done when standard input is not a terminal).
    #[arg(long)]
    pub password_stdin: bool,
}

/// Remote subcommands of `gust dags`.
#[derive(Debug, Subcommand)]
pub enum DagsRemote {
    /// List the DAGs the API knows.
    List(DagsListArgs),
    /// Show one DAG.
    Get(DagArgs),
    /// Pause a DAG: no new runs are scheduled.
    Pause(DagArgs),
    /// Unpause a DAG.
    Unpause(DagArgs),
    /// Trigger a run; with --wait or --follow, exit 0 when it succeeds and 1 when it fails.
    Trigger(TriggerArgs),
    /// Deploy DAG files without a volume: push each to the API, which validates and stores it; exit 1 when any is refused.
    Push(PushArgs),
}

/// `gust dags push`.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// DAG files to push, stored under their file names (`dags/etl.yaml` as `etl.yaml`).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<std::path::PathBuf>,
}

/// `gust dags list`.
#[derive(Debug, clap::Args)]
pub struct DagsListArgs {
    /// Only DAGs whose id contains this (case-insensitive; `|` separates alternatives).
    #[arg(long)]
    pub pattern: Option<String>,
    /// Only paused (true) or unpaused (false) DAGs.
    #[arg(long)]
    pub paused: Option<bool>,
    /// Paging.
    #[command(flatten)]
    pub page: PageArg,
    /// Output format.
    #[command(flatten)]
    pub out: OutputArg,
}

/// A command on one DAG.
#[derive(Debug, clap::Args)]
pub struct DagArgs {
    /// The dag_id.
    pub dag: String,
    /// Output format.
    #[command(flatten)]
    pub out: OutputArg,
}

/// `gust dags trigger`.
#[derive(Debug, clap::Args)]
pub struct TriggerArgs {
    /// The dag_id.
    pub dag: String,
    /// The run's conf, a JSON object (checked against the DAG's params).
    #[arg(long, value_name = "JSON")]
    pub conf: Option<String>,
    /// The run's logical date (RFC 3339) [default: none, as Airflow 3's manual runs].
    #[arg(long, value_name = "DATE")]
    pub logical_date: Option<String>,
    /// The run's id [default: chosen by the API].
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,
    /// Wait for the run to finish, with a progress bar of tasks done on a terminal.
    #[arg(long)]
    pub wait: bool,
    /// Wait, and print the tasks' log lines as they are written.
    #[arg(long)]
    pub follow: bool,
    /// Stop waiting after this long (e.g. 90s, 10m) with exit code 2; the run goes on.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub timeout: Option<std::time::Duration>,
    /// Output format.
    #[command(flatten)]
    pub out: OutputArg,
}

/// `gust runs …`.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List runs, newest first.
    List(RunsListArgs),
    /// Show one run.
    Get(RunArgs),
    /// Clear a run's task instances and queue it again (--dry-run lists them only).
    Clear(RunClearArgs),
}

/// `gust runs list`.
#[derive(Debug, clap::Args)]
pub struct RunsListArgs {
    /// Only this DAG's runs [default: every DAG's].
    pub dag: Option<String>,
    /// Only runs in these states (repeat or comma-separate).
    #[arg(long, value_delimiter = ',')]
    pub state: Vec<String>,
    /// Paging.
    #[command(flatten)]
    pub page: PageArg,
    /// Output format.
    #[command(flatten)]
    pub out: OutputArg,
}

/// A command on one run.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The dag_id.
    pub dag: String,
    /// The dag_run_id.
    pub run: String,
    /// Output format.
    #[command(flatten)]
    pub out: OutputArg,
}

/// `gust runs clear`.
#[derive(Debug, clap::Args)]
pub struct RunClearArgs {
    /// The run.
    #[command(flatten)]
    pub run: RunArgs,
    /// Clear only failed and upstream_failed task instances.
    #[arg(long)]
    pub only_failed: bool,
    /// List what would be cleared; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Remote subcommands of `gust tasks`.
#[derive(Debug, Subcommand)]
pub enum TasksRemote {
    /// List a run's task instances.
    List(TasksListArgs),
    /// Print a task's log (the current try unless --try); --follow keeps printing until the task ends.
    Logs(LogsArgs),
    /// Clear task instances so they run again.
    Clear(TasksClearArgs),
    /// Set a task instance's state by hand.
    Mark(MarkArgs),
}

/// `gust tasks list`.
#[derive(Debug, clap::Args)]
pub struct TasksListArgs {
    /// The run.
    #[command(flatten)]
    pub run: RunArgs,
    /// Only task instances in these states (repeat or comma-separate).
    #[arg(long, value_delimiter = ',')]
    pub state: Vec<String>,
}

/// `gust tasks logs`.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// The dag_id.
    pub dag: String,
    /// The dag_run_id.
    pub run: String,
    /// The task_id.
    pub task: String,
    /// The try to print [default: the task's current try].
    #[arg(long = "try", value_name = "N")]
    pub try_number: Option<u32>,
    /// The mapped instance [default: the unmapped task, -1].
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub map_index: i64,
    /// Keep printing new lines until the task has finished (waiting for a queued run to start, following retries).
    #[arg(long, short = 'f')]
    pub follow: bool,
}

/// `gust tasks clear`.
#[derive(Debug, clap::Args)]
pub struct TasksClearArgs {
    /// The dag_id.
    pub dag: String,
    /// The dag_run_id.
    pub run: String,
    /// The task_ids to clear.
    #[arg(required = true)]
    pub tasks: Vec<String>,
    /// Also clear the tasks downstream of them.
    #[arg(long)]
    pub downstream: bool,
    /// Clear only failed and upstream_failed ones.
    #[arg(long)]
    pub only_failed: bool,
    /// List what would be cleared; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format.
    #[command(flatten)]
    pub out: OutputArg,
}

/// `gust tasks mark`.
#[derive(Debug, clap::Args)]
pub struct MarkArgs {
    /// The dag_id.
    pub dag: String,
    /// The dag_run_id.
    pub run: String,
    /// The task_id.
    pub task: String,
    /// The new state.
    #[arg(value_enum)]
    pub state: MarkState,
    /// Also mark the tasks upstream of it.
    #[arg(long)]
    pub upstream: bool,
    /// Also mark the tasks downstream of it.
    #[arg(long)]
    pub downstream: bool,
    /// List what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format.
    #[command(flatten)]
    pub out: OutputArg,
}

/// States a task instance can be marked with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MarkState {
    /// success.
    Success,
    /// failed.
    Failed,
    /// skipped.
    Skipped,
}

/// `gust pools …`.
#[derive(Debug, Subcommand)]
pub enum PoolsCommand {
    /// List pools with their slots.
    List(ListArgs),
    /// Show one pool.
    Get(NameArgs),
    /// Create a pool, or change its slots and description.
    Set(PoolSetArgs),
    /// Delete a pool.
    Delete(NameArgs),
}

/// A plain list.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Paging.
    #[command(flatten)]
    pub page: PageArg,
    /// Output format.
    #[command(flatten)]
    pub out: OutputArg,
}

/// A command on one named thing (pool, variable key, user).
#[derive(Debug, clap::Args)]
pub struct NameArgs {
    /// Its name.
    pub name: String,
    /// Output format.
    #[command(flatten)]
    pub out: OutputArg,
}

/// `gust pools set`.
#[derive(Debug, clap::Args)]
pub struct PoolSetArgs {
    /// The pool's name.
    pub name: String,
    /// Its slots.
    pub slots: u32,
    /// Its description.
    #[arg(long)]
    pub description: Option<String>,
    /// Output format.
    #[command(flatten)]
    pub out: OutputArg,
}

/// `gust variables …`.
#[derive(Debug, Subcommand)]
pub enum VariablesCommand {
    /// List variables (secret-looking values read `***`).
    List(ListArgs),
    /// Show one variable.
    Get(NameArgs),
    /// Create a variable or change its value.
    Set(VariableSetArgs),
    /// Delete a variable.
    Delete(NameArgs),
}

/// `gust variables set`.
#[derive(Debug, clap::Args)]
pub struct VariableSetArgs {
    /// The key.
    pub key: String,
    /// The value (a string; JSON is stored as its text).
    pub value: String,
    /// Its description.
    #[arg(long)]
    pub description: Option<String>,
    /// Output format.
    #[command(flatten)]
    pub out: OutputArg,
}

/// `gust backfill …`.
#[derive(Debug, Subcommand)]
pub enum BackfillCommand {
    /// Create a backfill of a DAG's data intervals between two dates (--dry-run lists them).
    Create(BackfillCreateArgs),
    /// List a DAG's backfills.
    List(DagArgs),
    /// Pause a backfill: no new runs start.
    Pause(BackfillIdArgs),
    /// Unpause a backfill.
    Unpause(BackfillIdArgs),
    /// Cancel a backfill: its queued runs fail, running ones finish.
    Cancel(BackfillIdArgs),
}

/// `gust backfill create`.
#[derive(Debug, clap::Args)]
pub struct BackfillCreateArgs {
    /// The dag_id.
    pub dag: String,
    /// First logical date (RFC 3339, or a date YYYY-MM-DD meaning its midnight UTC).
    #[arg(long, value_name = "DATE")]
    pub from: String,
    /// Last logical date (same forms).
    #[arg(long, value_name = "DATE")]
    pub to: String,
    /// Which existing runs run again.
    #[arg(long, value_enum, default_value_t = Reprocess::None)]
    pub reprocess: Reprocess,
    /// Most backfill runs active at once.
    #[arg(long, default_value_t = 10)]
    pub max_active_runs: u32,
    /// Newest date first.
    #[arg(long)]
    pub run_backwards: bool,
    /// Conf of every run, a JSON object.
    #[arg(long, value_name = "JSON")]
    pub conf: Option<String>,
    /// List the logical dates it would run; create nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format.
    #[command(flatten)]
    pub out: OutputArg,
}

/// Airflow's `reprocess_behavior`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Reprocess {
    /// Dates that have a run keep it.
    None,
    /// Failed runs run again.
    Failed,
    /// Failed and successful runs run again.
    Completed,
}

/// A command on one backfill.
#[derive(Debug, clap::Args)]
pub struct BackfillIdArgs {
    /// The backfill's id.
    pub id: i64,
    /// Output format.
    #[command(flatten)]
    pub out: OutputArg,
}

/// `gust users …`.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List users and their roles.
    List(ListArgs),
    /// Create a user; the password is prompted, or read from standard input.
    Create(UserCreateArgs),
    /// Delete a user.
    Delete(NameArgs),
}

/// `gust users create`.
#[derive(Debug, clap::Args)]
pub struct UserCreateArgs {
    /// The username.
    pub username: String,
    /// The role.
    #[arg(long, value_enum)]
    pub role: Role,
    /// Read the password from standard input (also done when standard input is not a terminal).
    #[arg(long)]
    pub password_stdin: bool,
    /// Output format.
    #[command(flatten)]
    pub out: OutputArg,
}

/// The API's roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// Reads everything but users.
    Viewer,
    /// Also triggers, pauses, clears and marks.
    Operator,
    /// Everything.
    Admin,
}
