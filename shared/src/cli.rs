//! The tiny command line every gust binary accepts.

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

/// Parses `[migrate | --migrate | --help]`; returns the usage text as the error.
pub fn parse_start_mode(binary: &str, args: impl IntoIterator<Item = String>) -> Result<StartMode, String> {
    let args: Vec<String> = args.into_iter().collect();
    let usage = format!(
        "usage: {binary} [--migrate | migrate]\n\n  (no argument)  run {binary}\n  --migrate      apply database migrations, then run\n  migrate        apply database migrations and exit\n\nSettings come from gust.toml and GUST__SECTION__KEY environment variables (see README.md)."
    );
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] => Ok(StartMode::Run),
        ["--migrate"] => Ok(StartMode::MigrateThenRun),
        ["migrate"] => Ok(StartMode::MigrateOnly),
        ["--help"] | ["-h"] => Err(usage),
        other => Err(format!("unknown arguments {other:?}\n\n{usage}")),
    }
}

/// The arguments of `create-user --username NAME --role ROLE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateUserArgs {
    /// Login name of the user to create or update.
    pub username: String,
    /// Role name, checked by the binary.
    pub role: String,
}

/// Usage of the `create-user` command.
pub const CREATE_USER_USAGE: &str = "  create-user --username NAME --role viewer|operator|admin\n                 create or update an API user; the password comes from\n                 GUST_NEW_USER_PASSWORD or the first line of standard input";

/// Parses the arguments after `create-user`; returns the usage text as the error.
pub fn parse_create_user(binary: &str, args: impl IntoIterator<Item = String>) -> Result<CreateUserArgs, String> {
    let usage = format!("usage: {binary} create-user --username NAME --role ROLE\n\n{CREATE_USER_USAGE}");
    let (mut username, mut role) = (None, None);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_string(), Some(value.to_string())),
            None => (arg.clone(), None),
        };
        let slot = match flag.as_str() {
            "--username" => &mut username,
            "--role" => &mut role,
            "--help" | "-h" => return Err(usage),
            _ => return Err(format!("unknown argument {arg:?}\n\n{usage}")),
        };
        match inline.or_else(|| args.next()) {
            Some(value) if !value.trim().is_empty() => *slot = Some(value),
            _ => return Err(format!("{flag} needs a value\n\n{usage}")),
        }
    }
    match (username, role) {
        (Some(username), Some(role)) => Ok(CreateUserArgs { username, role }),
        _ => Err(format!("both --username and --role are required\n\n{usage}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_user_needs_a_username_and_a_role() {
        let parse = |a: &[&str]| parse_create_user("gust-x", a.iter().map(|s| s.to_string()));
        assert_eq!(
            parse(&["--username", "ana", "--role=admin"]),
            Ok(CreateUserArgs { username: "ana".into(), role: "admin".into() })
        );
        assert!(parse(&["--username", "ana"]).unwrap_err().contains("required"));
        assert!(parse(&["--role"]).unwrap_err().contains("needs a value"));
        assert!(parse(&["--password", "x"]).unwrap_err().contains("unknown argument"));
    }

    #[test]
    fn start_modes_parse_and_unknown_arguments_are_rejected() {
        let parse = |a: &[&str]| parse_start_mode("gust-x", a.iter().map(|s| s.to_string()));
        assert_eq!(parse(&[]), Ok(StartMode::Run));
        assert_eq!(parse(&["--migrate"]), Ok(StartMode::MigrateThenRun));
        assert_eq!(parse(&["migrate"]), Ok(StartMode::MigrateOnly));
        assert!(parse(&["--bogus"]).unwrap_err().contains("unknown arguments"));
    }
}

/// Why a binary could not get to its main loop.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Bad command line; the text is the usage.
    #[error("{0}")]
    Usage(String),
    /// Bad settings.
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    /// Migrations failed.
    #[error(transparent)]
    Migrate(#[from] crate::db::DbError),
}

/// The common start of every binary: logging, arguments, settings and the
/// optional migration. `None` means the work is done (`migrate` only).
pub async fn start(binary: &str) -> Result<Option<crate::settings::Settings>, StartupError> {
    crate::telemetry::init();
    let mode = parse_start_mode(binary, std::env::args().skip(1)).map_err(StartupError::Usage)?;
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

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutdown requested");
}
