//! `gust import-errors`, `gust pools …`, `gust variables …`, `gust users …`:
//! what the admin looks after (reads are open to every role but users').

use std::{io::Write, process::ExitCode};

use reqwest::Method;
use serde_json::{json, Value};

use super::{
    args::{PoolsCommand, Role, UsersCommand, VariablesCommand},
    client::{segment, Client, ClientError},
    output::{self, Column, Output},
    page_query, read_password, RemoteError,
};

const IMPORT_ERROR_COLUMNS: &[Column] = &[("FILE", "filename"), ("SINCE", "timestamp"), ("ERROR", "stack_trace")];
const POOL_COLUMNS: &[Column] = &[
    ("POOL", "name"),
    ("SLOTS", "slots"),
    ("RUNNING", "running_slots"),
    ("QUEUED", "queued_slots"),
    ("OPEN", "open_slots"),
    ("DESCRIPTION", "description"),
];
const VARIABLE_COLUMNS: &[Column] = &[("KEY", "key"), ("VALUE", "value"), ("DESCRIPTION", "description")];
const USER_COLUMNS: &[Column] = &[("USER", "username"), ("ROLE", "role"), ("CREATED", "created_at")];

/// `gust import-errors`: the DAG files that failed to import; exit 1 when there is any.
pub fn import_errors(client: &Client, format: Output, out: &mut dyn Write) -> Result<ExitCode, RemoteError> {
    let body = client.get("/api/v2/importErrors", &[("limit", "1000".into())])?;
    let count = body["total_entries"].as_u64().unwrap_or(0);
    if format == Output::Table && count == 0 {
        writeln!(out, "No import errors")?;
        return Ok(ExitCode::SUCCESS);
    }
    output::list(out, format, &body, "import_errors", IMPORT_ERROR_COLUMNS)?;
    Ok(if count == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// PATCH `path` with `changes`, or POST `create` to `collection` when it does not exist yet: an upsert.
fn upsert(
    client: &Client,
    path: &str,
    changes: &Value,
    collection: &str,
    create: &Value,
) -> Result<Value, RemoteError> {
    match client.send(Method::PATCH, path, changes) {
        Err(ClientError::NotFound(_)) => Ok(client.send(Method::POST, collection, create)?),
        other => Ok(other?),
    }
}

/// `body` with `description` when one is given (a change without it keeps the stored one).
fn with_description(mut body: Value, description: Option<&str>) -> Value {
    if let Some(description) = description {
        body["description"] = json!(description);
    }
    body
}

/// Runs a `gust pools` command.
pub fn pools(command: PoolsCommand, client: &Client, out: &mut dyn Write) -> Result<(), RemoteError> {
    let path = |name: &str| format!("/api/v2/pools/{}", segment(name));
    match command {
        PoolsCommand::List(args) => {
            let body = client.get("/api/v2/pools", &page_query(&args.page))?;
            output::list(out, args.out.output, &body, "pools", POOL_COLUMNS)?;
        }
        PoolsCommand::Get(args) => output::object(out, args.out.output, &client.get(&path(&args.name), &[])?, &[])?,
        PoolsCommand::Set(args) => {
            let changes = with_description(json!({"slots": args.slots}), args.description.as_deref());
            let mut create = changes.clone();
            create["name"] = json!(args.name);
            let pool = upsert(client, &path(&args.name), &changes, "/api/v2/pools", &create)?;
            output::done(out, args.out.output, &pool, &format!("Pool {} has {} slots", args.name, args.slots))?;
        }
        PoolsCommand::Delete(args) => {
            client.delete(&path(&args.name))?;
            output::done(out, args.out.output, &json!({"deleted": args.name}), &format!("Pool {} deleted", args.name))?;
        }
    }
    Ok(())
}

/// Runs a `gust variables` command.
pub fn variables(command: VariablesCommand, client: &Client, out: &mut dyn Write) -> Result<(), RemoteError> {
    let path = |key: &str| format!("/api/v2/variables/{}", segment(key));
    match command {
        VariablesCommand::List(args) => {
            let body = client.get("/api/v2/variables", &page_query(&args.page))?;
            output::list(out, args.out.output, &body, "variables", VARIABLE_COLUMNS)?;
        }
        VariablesCommand::Get(args) => {
            let variable = client.get(&path(&args.name), &[])?;
            match args.out.output {
                // The bare value, for `$(gust variables get KEY)`.
                Output::Table => writeln!(out, "{}", output::text(&variable["value"]))?,
                format => output::document(out, format, &variable)?,
            }
        }
        VariablesCommand::Set(args) => {
            let changes = with_description(json!({"key": args.key, "value": args.value}), args.description.as_deref());
            let variable = upsert(client, &path(&args.key), &changes, "/api/v2/variables", &changes)?;
            output::done(out, args.out.output, &variable, &format!("Variable {} set", args.key))?;
        }
        VariablesCommand::Delete(args) => {
            client.delete(&path(&args.name))?;
            let message = format!("Variable {} deleted", args.name);
            output::done(out, args.out.output, &json!({"deleted": args.name}), &message)?;
        }
    }
    Ok(())
}

/// Runs a `gust users` command.
pub fn users(command: UsersCommand, client: &Client, out: &mut dyn Write) -> Result<(), RemoteError> {
    match command {
        UsersCommand::List(args) => {
            let body = client.get("/api/v2/gust/users", &page_query(&args.page))?;
            output::list(out, args.out.output, &body, "users", USER_COLUMNS)?;
        }
        UsersCommand::Create(args) => {
            let role = match args.role {
                Role::Viewer => "viewer",
                Role::Operator => "operator",
                Role::Admin => "admin",
            };
            let password =
                read_password(&format!("Password for the new user {}: ", args.username), args.password_stdin)?;
            let body = json!({"username": args.username, "password": password, "role": role});
            let user = client.send(Method::POST, "/api/v2/gust/users", &body)?;
            output::done(out, args.out.output, &user, &format!("User {} created with role {role}", args.username))?;
        }
        UsersCommand::Delete(args) => {
            client.delete(&format!("/api/v2/gust/users/{}", segment(&args.name)))?;
            output::done(out, args.out.output, &json!({"deleted": args.name}), &format!("User {} deleted", args.name))?;
        }
    }
    Ok(())
}
