//! What the gust binaries share: the DAG model and its parser, the task state
//! machine, the task message format, database access, the RabbitMQ topology,
//! settings and telemetry.
//!
//! # Layout
//!
//! - [`dag`]: DAG files: the model (`Dag`, `TaskSpec`), the YAML parser and
//!   validator, schedules, params, trigger rules, task mapping.
//! - [`dag_folder`]: which files of the DAG folder are DAG files, and who owns a `dag_id`.
//! - [`state`]: task and run states with Airflow's names, and **the one
//!   transition table** (`TaskTransition`, `RunTransition`) that every state
//!   change follows.
//! - [`db`]: PostgreSQL: the pool, the embedded migrations, and the SQL,
//!   grouped by who calls it:
//!   - `db::task_instances::{run_progress, dispatch, sweeps}`: the scheduler;
//!   - `db::task_instances::worker_tries`: the worker's compare-and-set;
//!   - `db::task_instances::try_end`: ending a try, whoever ends it;
//!   - `db::task_instances::{repair, listing}`: the API's changes by hand and reads;
//!   - `db::signals`: NOTIFY channels and payloads, advisory locks;
//!   - `db::event_log`: the audit log the webapi writes and reads;
//!   - `db::retention`: what `gust db clean` counts and deletes;
//!   - one module per other table family (`runs`, `dags`, `pools`, `xcom`, …).
//! - [`message`]: the versioned, self-contained task message.
//! - [`amqp`]: RabbitMQ topology (exchanges, work, delay and dead queues) and publishing.
//! - [`connections`]: Airflow's Connections, decrypted, from `GUST_CONN_<ID>` or the table ([`connections::resolve`]).
//! - [`secrets`]: Fernet encryption at rest of connection secrets.
//! - [`template`]: Jinja rendering of operator arguments with Airflow's variables.
//! - [`settings`], [`cli`], [`telemetry`]: typed settings, shared command-line
//!   handling, logging.
//! - [`health`]: the scheduler's and the worker's ops server (`/healthz`, `/readyz`, and `/metrics`).
//! - [`metrics`]: Prometheus plumbing: a daemon's registry served at `/metrics`, histogram buckets.
//! - [`retention`]: deleting expired runs, dead letters and event log records
//!   in short batches (`gust db clean`, the scheduler's `GUST__RETENTION__MAX_AGE`).
//!
//! README.md's "Where a task goes" follows one task through these modules and
//! the binaries, hop by hop.

pub mod amqp;
pub mod broker;
pub mod cli;
pub mod connections;
pub mod dag;
pub mod dag_folder;
pub mod db;
pub mod health;
pub mod message;
pub mod metrics;
pub mod retention;
pub mod secrets;
pub mod settings;
pub mod state;
pub mod telemetry;
pub mod template;
#[cfg(test)]
mod test_corpus;

#[cfg(test)]
mod tests {
    /// The cells of README's "Where a task goes" rows: (files, functions).
    fn hops(readme: &str) -> Vec<(Vec<String>, Vec<String>)> {
        let start = readme.find("## Where a task goes").expect("README has a \"Where a task goes\" section");
        let section = &readme[start..];
        let end = section.find("\n### ").unwrap_or(section.len());
        let quoted = |cell: &str| -> Vec<String> { cell.split('`').skip(1).step_by(2).map(str::to_string).collect() };
        section[..end]
            .lines()
            .filter(|line| line.starts_with("| ") && line.as_bytes().get(2).is_some_and(u8::is_ascii_digit))
            .map(|line| {
                let cells: Vec<&str> = line.split(" | ").collect();
                (quoted(cells[2]), quoted(cells[3]))
            })
            .collect()
    }

    #[test]
    fn every_hop_of_where_a_task_goes_names_a_function_that_is_in_its_files() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("README.md");
        let hops = hops(&readme);
        assert!(hops.len() >= 10, "README's table of hops is missing or short: {hops:?}");
        for (files, functions) in hops {
            let sources: Vec<String> = files
                .iter()
                .map(|f| std::fs::read_to_string(format!("{root}/{f}")).unwrap_or_else(|e| panic!("{f}: {e}")))
                .collect();
            for function in functions {
                assert!(
                    sources
                        .iter()
                        .any(|s| s.contains(&format!("fn {function}(")) || s.contains(&format!("fn {function}<"))),
                    "README says `{function}` is in {files:?}, but none of them defines it"
                );
            }
        }
    }
}
