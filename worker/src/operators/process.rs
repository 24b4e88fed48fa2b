//! Running a task's process, shared by `bash` and custom operators: its own
//! process group, output streamed to the log line by line, the execution
//! timeout and worker shutdown ending the whole group (TERM, then KILL after
//! the grace period), and the `$GUST_XCOM` file read back as its XCom.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use gust_shared::message::TaskMessage;
use nix::{
    sys::signal::{killpg, Signal},
    unistd::Pid,
};
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader},
    process::Command,
    time::timeout,
};
use tokio_util::sync::CancellationToken;

use super::{Outcome, RunLimits};
use crate::log_sink::{LogSink, Stream};

/// Longest log line kept; the rest of a longer line is cut.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// The per-try files of a process: its working directory (a fresh temporary
/// folder unless the task names one) and its `$GUST_XCOM` file; both are
/// removed when dropped.
pub(super) struct TryFiles {
    /// Where the process runs.
    pub workdir: PathBuf,
    /// Where it may write its XCom.
    pub xcom_file: PathBuf,
    /// Extra per-try files (e.g. `$GUST_RESULT`), removed with the others.
    extra: Vec<PathBuf>,
    scratch: Option<PathBuf>,
}

impl TryFiles {
    /// Prepares the try's files, or why the working directory cannot be made.
    pub async fn create(task: &TaskMessage, cwd: Option<&str>, log: &LogSink) -> Result<Self, Outcome> {
        let unique = format!("{}-{}-{}", task.ti_id, task.try_number, std::process::id());
        let scratch = cwd.is_none().then(|| std::env::temp_dir().join(format!("gust-{unique}")));
        let workdir = cwd.map(PathBuf::from).or_else(|| scratch.clone()).expect("one of the two is set");
        if let Some(dir) = &scratch {
            if let Err(e) = std::fs::create_dir_all(dir) {
                let reason = format!("cannot create working directory {}: {e}", dir.display());
                log.line(Stream::Gust, reason.clone()).await;
                return Err(Outcome::failed(None, reason));
            }
        }
        let xcom_file = std::env::temp_dir().join(format!("gust-xcom-{unique}.json"));
        Ok(TryFiles { workdir, xcom_file, extra: Vec::new(), scratch })
    }

    /// A further per-try file path named `<kind>` (not created), removed with the others.
    pub fn extra(&mut self, kind: &str) -> PathBuf {
        let path = self.xcom_file.with_file_name(
            self.xcom_file.file_name().and_then(|n| n.to_str()).unwrap_or("gust").replacen("xcom", kind, 1),
        );
        self.extra.push(path.clone());
        path
    }
}

impl Drop for TryFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.xcom_file);
        for file in &self.extra {
            let _ = std::fs::remove_file(file);
        }
        if let Some(dir) = &self.scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Runs `command` (program, arguments and environment set by the caller) as
/// the try's process; `what` names it in the log, `stdin` is written to its
/// standard input (closed at once when `None`). Returns how it ended and its
/// last non-empty stdout line.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run(
    task: &TaskMessage,
    mut command: Command,
    what: &str,
    stdin: Option<Vec<u8>>,
    workdir: &Path,
    log: &LogSink,
    limits: &RunLimits,
    stop: &CancellationToken,
) -> (Outcome, Option<String>) {
    // SAFETY: the closure runs in the forked child before exec and only makes async-signal-safe calls (prctl, getppid).
    unsafe {
        command.pre_exec(die_with_worker);
    }
    let mut child = match command
        .current_dir(workdir)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            let reason = format!("cannot start {what}: {e}");
            log.line(Stream::Gust, reason.clone()).await;
            return (Outcome::failed(None, reason), None);
        }
    };
    let pgid = child.id().and_then(|id| i32::try_from(id).ok()).unwrap_or(0);
    log.line(
        Stream::Gust,
        format!("try {} running {what} as process group {pgid} in {}", task.try_number, workdir.display()),
    )
    .await;
    if let (Some(mut pipe), Some(input)) = (child.stdin.take(), stdin) {
        // A process that exits without reading its input is not an error here.
        tokio::spawn(async move {
            let _ = pipe.write_all(&input).await;
            let _ = pipe.shutdown().await;
        });
    }
    let stdout = tokio::spawn(pump(child.stdout.take(), log.clone(), Stream::Stdout));
    let stderr = tokio::spawn(pump(child.stderr.take(), log.clone(), Stream::Stderr));

    let mut timed_out = None;
    let mut interrupted = false;
    // A task without execution_timeout may run for a century.
    let limit = task.execution_timeout_ms.map_or(Duration::from_secs(100 * 365 * 24 * 3600), Duration::from_millis);
    let status = tokio::select! {
        status = child.wait() => status,
        _ = tokio::time::sleep(limit) => {
            timed_out = Some(limit);
            log.line(Stream::Gust, format!("execution_timeout of {limit:?} reached; sending SIGTERM to process group {pgid}")).await;
            terminate(&mut child, pgid, log, limits).await
        }
        _ = stop.cancelled() => {
            interrupted = true;
            log.line(Stream::Gust, format!("worker shutdown: sending SIGTERM to process group {pgid}")).await;
            terminate(&mut child, pgid, log, limits).await
        }
    };
    // Whatever the process left running in its group (background jobs) ends with the try.
    signal_group(pgid, Signal::SIGKILL);
    let last_line = stdout.await.ok().flatten();
    let _ = stderr.await;

    let (exit_code, killed_by) = match status {
        Ok(status) => {
            use std::os::unix::process::ExitStatusExt;
            (status.code().or_else(|| status.signal().map(|s| 128 + s)), status.signal())
        }
        Err(e) => {
            let reason = format!("lost track of the {what} process: {e}");
            log.line(Stream::Gust, reason.clone()).await;
            return (Outcome::failed(None, reason), None);
        }
    };
    let code_text = exit_code.map_or("unknown".to_string(), |c| c.to_string());
    if interrupted {
        return (Outcome::interrupted(exit_code), None);
    }
    if let Some(limit) = timed_out {
        log.line(Stream::Gust, format!("task timed out; exit code {code_text}")).await;
        return (Outcome::failed(exit_code, format!("timed out after {limit:?} (execution_timeout)")), None);
    }
    if let Some(signal) = killed_by {
        let name = Signal::try_from(signal).map_or_else(|_| "unknown signal".to_string(), |s| s.as_str().to_string());
        let reason = format!("killed by signal {signal} ({name}), exit code {code_text}");
        log.line(Stream::Gust, format!("the {what} process was {reason}")).await;
        return (Outcome::failed(exit_code, reason), None);
    }
    log.line(Stream::Gust, format!("command exited with code {code_text}")).await;
    let outcome = match exit_code {
        Some(0) => Outcome { exit_code, ..Outcome::success() },
        _ => Outcome::failed(exit_code, format!("exit code {code_text}")),
    };
    (outcome, last_line)
}

/// Attaches the try's XCom: the JSON in `$GUST_XCOM` if the task wrote one,
/// else its last stdout line (JSON if it parses, a string otherwise) when the
/// operator pushes it. An invalid or oversized XCom fails the try.
pub(super) async fn with_xcom(
    outcome: Outcome,
    xcom_file: &Path,
    last_line: Option<String>,
    limits: &RunLimits,
    log: &LogSink,
) -> Outcome {
    let written = match std::fs::metadata(xcom_file) {
        Ok(meta) if meta.len() > limits.max_xcom_bytes as u64 => {
            let reason = format!(
                "$GUST_XCOM holds {} bytes, more than the worker's max_xcom_bytes ({}); keep XComs small and pass large data by reference",
                meta.len(),
                limits.max_xcom_bytes
            );
            log.line(Stream::Gust, reason.clone()).await;
            return Outcome::failed(outcome.exit_code, reason);
        }
        Ok(meta) if meta.len() > 0 => std::fs::read(xcom_file).ok(),
        _ => None,
    };
    let value = match (written, last_line) {
        (Some(bytes), _) => match serde_json::from_slice(&bytes) {
            Ok(value) => value,
            Err(e) => {
                let reason = format!("$GUST_XCOM does not hold valid JSON: {e}");
                log.line(Stream::Gust, reason.clone()).await;
                return Outcome::failed(outcome.exit_code, reason);
            }
        },
        (None, Some(line)) if line.len() > limits.max_xcom_bytes => {
            let reason =
                format!("the last stdout line is longer than the worker's max_xcom_bytes ({})", limits.max_xcom_bytes);
            log.line(Stream::Gust, reason.clone()).await;
            return Outcome::failed(outcome.exit_code, reason);
        }
        (None, Some(line)) => serde_json::from_str(&line).unwrap_or(serde_json::Value::String(line)),
        (None, None) => return outcome,
    };
    Outcome { xcom: Some(value), ..outcome }
}

/// Makes the kernel kill the task's process when the worker dies (even by
/// SIGKILL), so a try taken over after a worker crash does not keep running
/// beside its successor.
fn die_with_worker() -> std::io::Result<()> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
    if nix::unistd::getppid() == Pid::from_raw(1) {
        // The worker died between fork and prctl.
        return Err(std::io::Error::other("worker exited while starting the task"));
    }
    Ok(())
}

/// SIGTERM to the group, then SIGKILL if it is still there after the grace period.
async fn terminate(
    child: &mut tokio::process::Child,
    pgid: i32,
    log: &LogSink,
    limits: &RunLimits,
) -> std::io::Result<std::process::ExitStatus> {
    signal_group(pgid, Signal::SIGTERM);
    match timeout(limits.kill_grace, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            log.line(Stream::Gust, format!("still running {:?} after SIGTERM; sending SIGKILL", limits.kill_grace))
                .await;
            signal_group(pgid, Signal::SIGKILL);
            child.wait().await
        }
    }
}

fn signal_group(pgid: i32, signal: Signal) {
    if pgid > 0 {
        // ESRCH (group already gone) is the normal case after a clean exit.
        let _ = killpg(Pid::from_raw(pgid), signal);
    }
}

/// Copies one output stream to the log line by line; returns the last non-empty line.
async fn pump(reader: Option<impl AsyncRead + Unpin>, log: LogSink, stream: Stream) -> Option<String> {
    let reader = reader?;
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::new();
    let mut last = None;
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return last,
            Ok(_) => {
                while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    buf.pop();
                }
                buf.truncate(MAX_LINE_BYTES);
                let line = String::from_utf8_lossy(&buf).into_owned();
                if !line.trim().is_empty() {
                    last = Some(line.clone());
                }
                log.line(stream, line).await;
            }
        }
    }
}
