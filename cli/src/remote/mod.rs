//! Remote commands: `gust login`, then commands that drive a running gust
//! over its HTTP API (Airflow 3's `/api/v2`), as a person or a script would.
//!
//! # Layout
//!
//! - [`args`]: the commands and flags, as clap reads them; [`args::RemoteCommand`]
//!   joins `gust`'s top level, [`args::DagsRemote`] `gust dags` and
//!   [`args::TasksRemote`] `gust tasks`.
//! - [`client`]: the config file `gust login` writes (URL, user, token; mode
//!   0600), the `GUST_API_URL`/`GUST_API_TOKEN` overrides, and every request,
//!   whose failures become one line naming what to do ([`client::ClientError`]).
//! - [`output`]: tables for people, the API's own document as `--output json|yaml`.
//! - One module a command family: [`dags`] (list, get, pause, unpause,
//!   trigger with `--wait`/`--follow`), [`runs`], [`tasks`] (list, logs with
//!   `--follow`, clear, mark), [`admin`] (import errors, pools, variables,
//!   users), [`backfill`].
//!
//! Here: [`run`], the dispatch of the top-level commands, login and logout,
//! and what several families share (reading a password, a JSON argument).
//!
//! Requests go one at a time through reqwest's blocking client, which runs
//! its own small runtime: call these commands from plain threads (main.rs
//! is synchronous), never from inside a tokio runtime.

pub mod admin;
pub mod args;
pub mod backfill;
pub mod client;
pub mod dags;
pub mod output;
pub mod runs;
pub mod tasks;

use std::{
    io::{self, BufRead, IsTerminal, Write},
    process::ExitCode,
};

use args::{LoginArgs, RemoteCommand};
use client::{Client, ClientError, Config};
use serde_json::Value;

/// Why a remote command failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The API could not be reached or refused the request.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A command-line value is malformed.
    #[error("{0}")]
    Argument(String),
    /// The password could not be read.
    #[error("cannot read the password: {0}")]
    Password(io::Error),
    /// Writing to standard output failed.
    #[error("cannot write the output: {0}")]
    Write(#[from] io::Error),
    /// `--timeout` passed before the run finished.
    #[error("{0}")]
    Timeout(String),
}

/// Runs a top-level remote command; the exit code on success.
pub fn run(command: RemoteCommand, out: &mut dyn Write) -> Result<ExitCode, RemoteError> {
    match command {
        RemoteCommand::Login(args) => login(&args, out)?,
        RemoteCommand::Logout => logout(out)?,
        RemoteCommand::Runs(command) => runs::run(command, &Client::from_config()?, out)?,
        RemoteCommand::ImportErrors(args) => return admin::import_errors(&Client::from_config()?, args.output, out),
        RemoteCommand::Pools(command) => admin::pools(command, &Client::from_config()?, out)?,
        RemoteCommand::Variables(command) => admin::variables(command, &Client::from_config()?, out)?,
        RemoteCommand::Users(command) => admin::users(command, &Client::from_config()?, out)?,
        RemoteCommand::Backfill(command) => backfill::run(command, &Client::from_config()?, out)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `gust login`: asks the API for a token and stores it with the URL and username.
fn login(args: &LoginArgs, out: &mut dyn Write) -> Result<(), RemoteError> {
    let path = client::config_path()?;
    let stored = Config::load(&path)?;
    let url = args.url.clone().or(stored.url).ok_or_else(|| {
        RemoteError::Argument("which API? give --url URL (e.g. --url http://localhost:8080) or set GUST_API_URL".into())
    })?;
    let username = args
        .username
        .clone()
        .or(stored.username)
        .ok_or_else(|| RemoteError::Argument("who? give --username USER".into()))?;
    let client = Client::new(&url, None)?;
    let password = read_password(&format!("Password for {username} at {}: ", client.url()), args.password_stdin)?;
    let token = client.login(&username, &password)?;
    let config = Config { url: Some(client.url().to_string()), username: Some(username.clone()), token: Some(token) };
    config.save(&path)?;
    writeln!(out, "Logged in to {} as {username}; token stored in {}", client.url(), path.display())?;
    Ok(())
}

/// `gust logout`: removes the stored token (the URL and username stay for the next login).
fn logout(out: &mut dyn Write) -> Result<(), RemoteError> {
    let path = client::config_path()?;
    let config = Config::load(&path)?;
    if config.token.is_none() {
        writeln!(out, "Not logged in ({} holds no token)", path.display())?;
        return Ok(());
    }
    Config { token: None, ..config }.save(&path)?;
    writeln!(out, "Logged out; token removed from {}", path.display())?;
    Ok(())
}

/// A password: prompted without echo on a terminal, else the first line of standard input.
pub fn read_password(prompt: &str, from_stdin: bool) -> Result<String, RemoteError> {
    let password = if from_stdin || !io::stdin().is_terminal() {
        let mut line = String::new();
        io::stdin().lock().read_line(&mut line).map_err(RemoteError::Password)?;
        line.trim_end_matches(['\n', '\r']).to_string()
    } else {
        rpassword::prompt_password(prompt).map_err(RemoteError::Password)?
    };
    if password.is_empty() {
        return Err(RemoteError::Password(io::Error::new(io::ErrorKind::InvalidInput, "it is empty")));
    }
    Ok(password)
}

/// A `--conf`-like argument: a JSON object.
pub fn json_object(flag: &str, text: Option<&str>) -> Result<Value, RemoteError> {
    let Some(text) = text else { return Ok(Value::Object(Default::default())) };
    match serde_json::from_str::<Value>(text) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(RemoteError::Argument(format!("{flag}: expected a JSON object, e.g. '{{\"key\": 1}}'"))),
        Err(e) => Err(RemoteError::Argument(format!("{flag}: not JSON: {e}"))),
    }
}

/// `--limit`/`--offset` as query parameters.
pub fn page_query(page: &args::PageArg) -> Vec<(&'static str, String)> {
    vec![("limit", page.limit.to_string()), ("offset", page.offset.to_string())]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn conf_must_be_a_json_object() {
        assert_eq!(json_object("--conf", None).unwrap(), json!({}));
        assert_eq!(json_object("--conf", Some(r#"{"a": 1}"#)).unwrap(), json!({"a": 1}));
        let not_object = json_object("--conf", Some("[1]")).unwrap_err().to_string();
        assert!(not_object.contains("--conf: expected a JSON object"), "{not_object}");
        let not_json = json_object("--conf", Some("{a")).unwrap_err().to_string();
        assert!(not_json.starts_with("--conf: not JSON"), "{not_json}");
    }
}
