//! The machine and software the numbers were measured on.

use std::path::Path;

use serde::Serialize;

use crate::{procs::output_of, stack::pg_connect};

/// Where the results come from.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// `nproc`.
    pub cores: Option<usize>,
    /// `MemTotal` of /proc/meminfo, in MiB.
    pub memory_mib: Option<u64>,
    /// `model name` of /proc/cpuinfo.
    pub cpu_model: Option<String>,
    /// Kernel release.
    pub kernel: Option<String>,
    /// PostgreSQL `server_version`.
    pub postgresql: Option<String>,
    /// RabbitMQ version (`rabbitmqctl version`).
    pub rabbitmq: Option<String>,
    /// `git rev-parse HEAD` of the workspace.
    pub git_commit: Option<String>,
    /// Whether the work tree had uncommitted changes.
    pub git_dirty: Option<bool>,
    /// `rustc --version`.
    pub rustc: Option<String>,
}

/// Collects what can be found; anything unreadable is `None`.
pub async fn describe(workspace: &Path, db_url: &str) -> Machine {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let dir = workspace.display().to_string();
    let postgresql = match pg_connect(db_url).await {
        Ok(client) => client.query_one("SHOW server_version", &[]).await.ok().map(|r| r.get::<_, String>(0)),
        Err(_) => None,
    };
    Machine {
        cores: output_of("nproc", &[]).await.and_then(|s| s.parse().ok()),
        memory_mib: field(&meminfo, "MemTotal")
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map(|kib| kib / 1024),
        cpu_model: field(&cpuinfo, "model name"),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|s| s.trim().to_string()),
        postgresql,
        rabbitmq: output_of("rabbitmqctl", &["version"]).await,
        git_commit: output_of("git", &["-C", &dir, "rev-parse", "HEAD"]).await,
        git_dirty: output_of("git", &["-C", &dir, "status", "--porcelain"]).await.map(|s| !s.is_empty()),
        rustc: output_of("rustc", &["--version"]).await,
    }
}

/// Value of the first `name: value` line.
fn field(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == name).then(|| value.trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn fields_are_found_by_name() {
        let text = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nMemTotal:       24684312 kB\n";
        assert_eq!(field(text, "model name").as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(field(text, "MemTotal").as_deref(), Some("24684312 kB"));
        assert_eq!(field(text, "flags"), None);
    }
}
