//! A ledger file that tasks append to, so a test can count how often each
//! task started and finished, whatever happened to the processes running it.

use std::{collections::BTreeMap, path::PathBuf};

/// A file of `start <task>` / `done <task>` lines.
pub struct Ledger {
    /// Where it is.
    pub path: PathBuf,
}

impl Ledger {
    /// A fresh, empty ledger in the temp folder.
    pub fn new() -> Ledger {
        Ledger { path: std::env::temp_dir().join(format!("gust-ledger-{}", uuid::Uuid::new_v4())) }
    }

    /// A bash command that records its start, sleeps `seconds`, then records its end.
    pub fn command(&self, seconds: f64) -> String {
        format!(
            "echo \"start $GUST_TASK_ID\" >> {p}; sleep {seconds}; echo \"done $GUST_TASK_ID\" >> {p}",
            p = self.path.display()
        )
    }

    /// A DAG `first → slow → last` whose tasks record themselves here; `slow` takes `seconds`.
    pub fn chain_dag(&self, dag_id: &str, seconds: f64, retries: u32) -> String {
        format!(
            "dag_id: {dag_id}\ndefault_args: {{retries: {retries}, retry_delay: 0s}}\ntasks:\n  - {{id: first, operator: bash, command: '{}'}}\n  - {{id: slow, operator: bash, command: '{}', depends_on: [first]}}\n  - {{id: last, operator: bash, command: '{}', depends_on: [slow]}}\n",
            self.command(0.0),
            self.command(seconds),
            self.command(0.0)
        )
    }

    /// Fails the test unless each of `tasks` ran to its end exactly once.
    pub fn assert_each_finished_once(&self, tasks: &[&str]) {
        let done = self.completions();
        for task in tasks {
            assert_eq!(done.get(*task), Some(&1), "{task} finished exactly once: {done:?}");
        }
    }

    fn count(&self, what: &str) -> BTreeMap<String, usize> {
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        let mut counts = BTreeMap::new();
        for line in text.lines() {
            if let Some(task) = line.strip_prefix(what).and_then(|rest| rest.strip_prefix(' ')) {
                *counts.entry(task.to_string()).or_insert(0) += 1;
            }
        }
        counts
    }

    /// How many times each task started.
    pub fn starts(&self) -> BTreeMap<String, usize> {
        self.count("start")
    }

    /// How many times each task ran to its end.
    pub fn completions(&self) -> BTreeMap<String, usize> {
        self.count("done")
    }
}

impl Default for Ledger {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
