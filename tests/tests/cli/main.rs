//! The `gust` command line, run as a real process: local commands on DAG
//! files (no broker, no daemon, no database), their outputs compared with the
//! expected text, their exit codes, and a property test that feeds the
//! validator mutated DAG files; `dags test` and `tasks test` with the local
//! PostgreSQL; `standalone` with PostgreSQL and RabbitMQ; remote commands
//! against a whole stack started by the test helpers (`remote`).
//!
//! The `gust` binary is in another package (gust-cli), so the first test
//! runs scripts/test's `cargo build --workspace --all-targets` (a no-op
//! there) and runs the binaries from the target dir.

mod commands;
mod db_clean;
mod fuzz;
mod helpers;
mod local_runs;
mod remote;
mod standalone;
mod validate;
