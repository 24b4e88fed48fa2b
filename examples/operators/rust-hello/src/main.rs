//! `gust-op-hello`: an example gust custom operator (protocol 1) in Rust.
//!
//! Reads the task from stdin (`{"protocol": 1, "task": {...}, "args": {...},
//! "params": {...}, "conf": {...}}`), greets `args.name` on stdout (the
//! task's log) and writes `{"greeting": "..."}` to `$GUST_XCOM`, the task's
//! `return_value` XCom. A missing `name` is a mistake no retry fixes, so it
//! is reported in `$GUST_RESULT` as a failure without retry.
//! `gust-op-hello --describe` prints what the worker advertises.

use std::io::Read;

use serde_json::{json, Value};

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--describe") {
        let description = json!({
            "name": "hello",
            "version": env!("CARGO_PKG_VERSION"),
            "description": env!("CARGO_PKG_DESCRIPTION"),
            "args_schema": {
                "type": "object",
                "properties": {"name": {"type": "string", "minLength": 1}},
                "required": ["name"],
                "additionalProperties": false
            }
        });
        println!("{description}");
        return;
    }
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("cannot read the task from stdin: {e}");
        std::process::exit(2);
    }
    let document: Value = match serde_json::from_str(&input) {
        Ok(document) => document,
        Err(e) => {
            eprintln!("stdin is not the task's JSON document: {e}");
            std::process::exit(2);
        }
    };
    if document["protocol"] != json!(1) {
        eprintln!("this operator speaks protocol 1, the worker sent {}", document["protocol"]);
        std::process::exit(2);
    }
    let Some(name) = document["args"]["name"].as_str().filter(|n| !n.is_empty()) else {
        fail_without_retry("args.name is missing: give the operator `args: {name: someone}`");
    };
    let greeting = format!("hello, {name}, from task {}", document["task"]["task_id"].as_str().unwrap_or("?"));
    println!("{greeting}");
    write_env_file("GUST_XCOM", &json!({"greeting": greeting}));
}

/// Tells the worker the try failed and must not be retried, then exits non-zero.
fn fail_without_retry(reason: &str) -> ! {
    eprintln!("{reason}");
    write_env_file("GUST_RESULT", &json!({"state": "failed", "retry": false, "reason": reason}));
    std::process::exit(1);
}

/// Writes `value` as JSON to the file named by environment variable `variable`.
fn write_env_file(variable: &str, value: &Value) {
    let Some(path) = std::env::var_os(variable) else {
        eprintln!("${variable} is not set: run this operator from a gust worker");
        std::process::exit(2);
    };
    if let Err(e) = std::fs::write(&path, value.to_string()) {
        eprintln!("cannot write ${variable}: {e}");
        std::process::exit(2);
    }
}
