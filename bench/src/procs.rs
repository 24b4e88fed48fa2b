//! Child processes (gust binaries, Celery workers) whose output goes to a log
//! file, stopped with SIGTERM and, past a grace period, SIGKILL.

use std::{
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    time::Duration,
};

use anyhow::Context;
use nix::{
    sys::signal::{kill, killpg, Signal},
    unistd::Pid,
};
use tokio::process::{Child, Command};

/// How to start one child process.
#[derive(Debug, Clone)]
pub struct Spawn<'a> {
    /// Name for messages and the log file (`<name>.log`).
    pub name: &'a str,
    /// Executable to run.
    pub program: &'a Path,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Working directory (inherited when `None`).
    pub cwd: Option<&'a Path>,
    /// Folder for the log file.
    pub log_dir: &'a Path,
    /// Start it in its own process group and signal the whole group
    /// (for programs with children of their own, like Celery's prefork pool).
    pub own_group: bool,
}

/// A running child process.
pub struct ChildProcess {
    /// Name for messages.
    pub name: String,
    /// Its stdout and stderr.
    pub log: PathBuf,
    child: Child,
    pid: i32,
    own_group: bool,
}

impl ChildProcess {
    /// Starts the process described by `spec`.
    pub fn spawn(spec: Spawn<'_>) -> anyhow::Result<ChildProcess> {
        let log = spec.log_dir.join(format!("{}.log", spec.name));
        let out = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let mut command = Command::new(spec.program);
        command
            .args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        if let Some(cwd) = spec.cwd {
            command.current_dir(cwd);
        }
        if spec.own_group {
            command.process_group(0);
        }
        let child = command.spawn().with_context(|| format!("starting {} ({})", spec.name, spec.program.display()))?;
        let pid = child.id().and_then(|id| i32::try_from(id).ok()).context("a freshly spawned child has a pid")?;
        crate::cleanup::track_pid(pid, spec.own_group);
        Ok(ChildProcess { name: spec.name.to_string(), log, child, pid, own_group: spec.own_group })
    }

    /// The OS process id.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// `Some(status)` once the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Fails with the exit status and the end of the log when the process is gone.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        match self.exited() {
            None => Ok(()),
            Some(status) => {
                let hint = if status.code() == Some(0) {
                    " (gust processes exit 0 only on SIGTERM or ctrl-c: something else on this machine stopped it)"
                } else {
                    ""
                };
                anyhow::bail!(
                    "{} exited unexpectedly ({status}){hint}; last lines of {}:\n{}",
                    self.name,
                    self.log.display(),
                    self.log_tail(15)
                )
            }
        }
    }

    /// Sends `signal` to the process, or to its whole process group when `group`.
    fn signal(&self, signal: Signal, group: bool) {
        let result =
            if group { killpg(Pid::from_raw(self.pid), signal) } else { kill(Pid::from_raw(self.pid), signal) };
        if let Err(e) = result {
            // ESRCH: already gone, which is what we want.
            if e != nix::errno::Errno::ESRCH {
                eprintln!("warning: sending {signal} to {} (pid {}): {e}", self.name, self.pid);
            }
        }
    }

    /// SIGTERM to the process, then waits up to `grace` before SIGKILL;
    /// returns the exit status. For a process in its own group, whatever is
    /// left of the group afterwards is killed too.
    pub async fn terminate(mut self, grace: Duration) -> Option<ExitStatus> {
        let status = match self.exited() {
            Some(status) => Some(status),
            None => {
                self.signal(Signal::SIGTERM, false);
                match tokio::time::timeout(grace, self.child.wait()).await {
                    Ok(status) => status.ok(),
                    Err(_) => {
                        eprintln!("warning: {} did not stop within {grace:?} of SIGTERM; killing it", self.name);
                        self.signal(Signal::SIGKILL, self.own_group);
                        self.child.wait().await.ok()
                    }
                }
            }
        };
        if self.own_group {
            self.signal(Signal::SIGKILL, true);
        }
        crate::cleanup::untrack_pid(self.pid);
        status
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }
}

/// The last `lines` lines of a text file (empty when unreadable).
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs a short command and returns its trimmed stdout, `None` on any failure.
pub async fn output_of(program: &str, args: &[&str]) -> Option<String> {
    let run = Command::new(program).args(args).stdin(Stdio::null()).stderr(Stdio::null()).output();
    let output = tokio::time::timeout(Duration::from_secs(30), run).await.ok()?.ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}
