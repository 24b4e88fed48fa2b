//! The command lines of the daemons (`gust-scheduler`, `gust-worker`,
//! `gust-webapi`), in clap, and the start every daemon shares.

use std::ffi::OsString;

use clap::{Parser, Subcommand};

/// What a binary was asked to do at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartMode {
    /// Run the component.
    Run,
    /// Apply the embedded database migrations, then run.
    MigrateThenRun,
    /// Apply the embedded database migrations and exit.
    MigrateOnly,
}

/// The git commit the binaries were built from (`unknown` outside a checkout).
pub const GIT_COMMIT: &str = env!("GUST_GIT_COMMIT");

/// The version line of every gust binary: package version and the git commit it was built from.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("GUST_GIT_COMMIT"), ")");

/// Where the daemons' settings come from, under every `--help`.
const SETTINGS_HELP: &str =
    "Settings come from gust.toml (or the file GUST_CONFIG names) and GUST__SECTION__KEY environment variables; see README.md.";

/// The command line of `gust-scheduler` and `gust-worker`: `[--migrate | migrate]`.
#[derive(Debug, Parser)]
#[command(version = VERSION, args_conflicts_with_subcommands = true, after_help = SETTINGS_HELP)]
pub struct DaemonArgs {
    /// Apply the database migrations, then run.
    #[arg(long)]
    pub migrate: bool,
    /// A one-off command instead of running.
    #[command(subcommand)]
    pub command: Option<DaemonCommand>,
}

/// One-off commands of `gust-scheduler` and `gust-worker`.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum DaemonCommand {
    /// Apply the database migrations and exit.
    Migrate,
}

impl DaemonArgs {
    /// What the daemon does at start.
    pub fn start_mode(&self) -> StartMode {
        start_mode(self.migrate, self.command == Some(DaemonCommand::Migrate))
    }
}

fn start_mode(migrate_flag: bool, migrate_command: bool) -> StartMode {
    match (migrate_flag, migrate_command) {
        (_, true) => StartMode::MigrateOnly,
        (true, false) => StartMode::MigrateThenRun,
        (false, false) => StartMode::Run,
    }
}

/// The command line of `gust-webapi`: `[--migrate | migrate | create-user … | rotate-secrets]`.
#[derive(Debug, Parser)]
#[command(version = VERSION, args_conflicts_with_subcommands = true, after_help = SETTINGS_HELP)]
pub struct WebapiArgs {
    /// Apply the database migrations, then serve.
    #[arg(long)]
    pub migrate: bool,
    /// A one-off command instead of serving.
    #[command(subcommand)]
    pub command: Option<WebapiCommand>,
}

/// One-off commands of `gust-webapi`.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum WebapiCommand {
    /// Apply the database migrations and exit.
    Migrate,
    /// Create or update an API user; the password comes from GUST_NEW_USER_PASSWORD or the first line of standard input.
    CreateUser(CreateUserArgs),
    /// Re-encrypt every connection secret with the first key of GUST__SECRETS__KEY (after putting a new key first).
    RotateSecrets,
}

impl WebapiArgs {
    /// What the webapi does at start, when it runs no one-off command but `migrate`.
    pub fn start_mode(&self) -> StartMode {
        start_mode(self.migrate, self.command == Some(WebapiCommand::Migrate))
    }
}

/// The arguments of `create-user --username NAME --role ROLE`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct CreateUserArgs {
    /// Login name of the user to create or update.
    #[arg(long, value_name = "NAME", value_parser = non_blank)]
    pub username: String,
    /// Role: viewer, operator or admin.
    #[arg(long, value_name = "ROLE", value_parser = non_blank)]
    pub role: String,
}

fn non_blank(value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        Err("must not be blank".into())
    } else {
        Ok(value.to_string())
    }
}

/// Parses `args` (without the program name) as binary `binary`'s command line.
pub fn parse_args<T: Parser>(
    binary: &'static str,
    about: &'static str,
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
) -> Result<T, clap::Error> {
    let command = T::command().name(binary).bin_name(binary).about(about);
    let args = std::iter::once(OsString::from(binary)).chain(args.into_iter().map(Into::into));
    T::from_arg_matches(&command.try_get_matches_from(args)?)
}

/// Parses this process's arguments; prints help or version and exits 0, or the error and exits 2.
pub fn parse_or_exit<T: Parser>(binary: &'static str, about: &'static str) -> T {
    parse_args(binary, about, std::env::args_os().skip(1)).unwrap_or_else(|error| error.exit())
}

#[cfg(test)]
mod tests {
    use clap::{error::ErrorKind, CommandFactory};

    use super::*;

    fn webapi(args: &[&str]) -> Result<WebapiArgs, clap::Error> {
        parse_args("gust-webapi", "test", args)
    }

    fn daemon(args: &[&str]) -> Result<DaemonArgs, clap::Error> {
        parse_args("gust-x", "test", args)
    }

    #[test]
    fn create_user_needs_a_username_and_a_role() {
        let parsed = webapi(&["create-user", "--username", "ana", "--role=admin"]).unwrap();
        let expected = CreateUserArgs { username: "ana".into(), role: "admin".into() };
        assert_eq!(parsed.command, Some(WebapiCommand::CreateUser(expected)));
        let missing = webapi(&["create-user", "--username", "ana"]).unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::MissingRequiredArgument);
        assert!(missing.to_string().contains("--role"), "{missing}");
        assert!(webapi(&["create-user", "--role"]).unwrap_err().to_string().contains("a value is required"));
        assert!(webapi(&["create-user", "--username", " ", "--role", "admin"])
            .unwrap_err()
            .to_string()
            .contains("must not be blank"));
        assert_eq!(webapi(&["create-user", "--password", "x"]).unwrap_err().kind(), ErrorKind::UnknownArgument);
    }

    #[test]
    fn start_modes_parse_and_unknown_arguments_are_rejected() {
        assert_eq!(daemon(&[]).unwrap().start_mode(), StartMode::Run);
        assert_eq!(daemon(&["--migrate"]).unwrap().start_mode(), StartMode::MigrateThenRun);
        assert_eq!(daemon(&["migrate"]).unwrap().start_mode(), StartMode::MigrateOnly);
        assert_eq!(daemon(&["--bogus"]).unwrap_err().kind(), ErrorKind::UnknownArgument);
        assert!(daemon(&["--migrate", "migrate"]).is_err());
        assert_eq!(webapi(&["--migrate"]).unwrap().start_mode(), StartMode::MigrateThenRun);
        assert_eq!(webapi(&["migrate"]).unwrap().start_mode(), StartMode::MigrateOnly);
        assert_eq!(webapi(&["rotate-secrets"]).unwrap().command, Some(WebapiCommand::RotateSecrets));
        assert!(webapi(&["rotate-secrets", "now"]).is_err());
    }

    #[test]
    fn help_and_version_are_answers_not_errors() {
        for args in [["--help"], ["-h"], ["--version"]] {
            let kind = daemon(&args).unwrap_err().kind();
            assert!(matches!(kind, ErrorKind::DisplayHelp | ErrorKind::DisplayVersion), "{args:?}: {kind:?}");
            assert_eq!(daemon(&args).unwrap_err().exit_code(), 0);
        }
        let help = webapi(&["--help"]).unwrap_err().to_string();
        for command in ["migrate", "create-user", "rotate-secrets", "--migrate", "GUST__SECTION__KEY"] {
            assert!(help.contains(command), "{command} missing from {help}");
        }
    }

    #[test]
    fn the_definitions_are_consistent() {
        DaemonArgs::command().debug_assert();
        WebapiArgs::command().debug_assert();
    }
}

/// Why a binary could not get to its main loop.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Bad settings.
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    /// Migrations failed.
    #[error(transparent)]
    Migrate(#[from] crate::db::DbError),
}

/// The common start of the scheduler and the worker: arguments (help, version
/// and usage errors exit here), logging, settings and the optional migration.
/// `None` means the work is done (`migrate` only).
pub async fn start(
    binary: &'static str,
    about: &'static str,
) -> Result<Option<crate::settings::Settings>, StartupError> {
    let mode = parse_or_exit::<DaemonArgs>(binary, about).start_mode();
    crate::telemetry::init();
    let settings = crate::settings::Settings::load()?;
    if mode != StartMode::Run {
        crate::db::migrate(&settings.database.url).await?;
        tracing::info!("database migrated");
        if mode == StartMode::MigrateOnly {
            return Ok(None);
        }
    }
    Ok(Some(settings))
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled, so a signal that arrives in
/// between is neither lost nor fatal (the default action would kill the
/// process); a signal that cannot be listened for is logged, never a panic.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{signal, SignalKind};
    let listen = |kind: SignalKind, name: &'static str| {
        let registered = signal(kind);
        async move {
            match registered {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(error) => {
                    tracing::error!(%error, "cannot listen for {name}");
                    std::future::pending::<()>().await;
                }
            }
        }
    };
    let interrupt = listen(SignalKind::interrupt(), "SIGINT");
    let terminate = listen(SignalKind::terminate(), "SIGTERM");
    async move {
        tokio::select! {
            () = interrupt => {}
            () = terminate => {}
        }
        tracing::info!("shutdown requested");
    }
}
