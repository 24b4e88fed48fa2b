//! `bash`: runs `bash -c <command>` in its own process group, streams its
//! output to the log, and on timeout kills the whole group (TERM, then KILL
//! after the grace period) so no child outlives its try.

use std::{path::PathBuf, process::Stdio, time::Duration};

use gust_shared::{dag::OperatorSpec, message::TaskMessage, state::TaskState};
use tokio_util::sync::CancellationToken;
use nix::{
    sys::signal::{killpg, Signal},
    unistd::Pid,
};
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, BufReader},
    process::Command,
    time::timeout,
};

use super::{Operator, OperatorFuture, Outcome, RunLimits};
use crate::log_sink::{LogSink, Stream};

/// Longest log line kept; the rest of a longer line is cut.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// The `bash` operator.
pub struct Bash;

impl Operator for Bash {
    fn run<'a>(
        &'a self,
        task: &'a TaskMessage,
        log: &'a LogSink,
        limits: &'a RunLimits,
        stop: &'a CancellationToken,
    ) -> OperatorFuture<'a> {
        Box::pin(run_bash(task, log, limits, stop))
    }
}

async fn run_bash(task: &TaskMessage, log: &LogSink, limits: &RunLimits, stop: &CancellationToken) -> Outcome {
    let OperatorSpec::Bash { command, env, cwd } = &task.operator else {
        log.line(Stream::Gust, "bash operator got a message for another operator").await;
        return Outcome::failed(None, "bash operator got a message for another operator");
    };
    let scratch = cwd.is_none().then(|| {
        std::env::temp_dir().join(format!("gust-{}-{}-{}", task.ti_id, task.try_number, std::process::id()))
    });
    let workdir = cwd.as_ref().map(PathBuf::from).or_else(|| scratch.clone()).expect("one of the two is set");
    if let Some(dir) = &scratch {
        if let Err(e) = std::fs::create_dir_all(dir) {
            let reason = format!("cannot create working directory {}: {e}", dir.display());
            log.line(Stream::Gust, reason.clone()).await;
            return Outcome::failed(None, reason);
        }
    }
    let outcome = run_in(task, command, env, &workdir, log, limits, stop).await;
    if let Some(dir) = scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
    outcome
}

async fn run_in(
    task: &TaskMessage,
    command: &str,
    env: &std::collections::BTreeMap<String, String>,
    workdir: &std::path::Path,
    log: &LogSink,
    limits: &RunLimits,
    stop: &CancellationToken,
) -> Outcome {
    let mut command_line = Command::new("bash");
    // SAFETY: the closure runs in the forked child before exec and only makes async-signal-safe calls (prctl, getppid).
    unsafe {
        command_line.pre_exec(die_with_worker);
    }
    let mut child = match command_line
        .arg("-c")
        .arg(command)
        .current_dir(workdir)
        .envs(&task.env)
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            let reason = format!("cannot start bash: {e}");
            log.line(Stream::Gust, reason.clone()).await;
            return Outcome::failed(None, reason);
        }
    };
    let pgid = child.id().and_then(|id| i32::try_from(id).ok()).unwrap_or(0);
    log.line(Stream::Gust, format!("try {} running `bash -c` as process group {pgid} in {}", task.try_number, workdir.display()))
        .await;
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
    // Whatever the command left running in its group (background jobs) ends with the try.
    signal_group(pgid, Signal::SIGKILL);
    let _ = stdout.await;
    let _ = stderr.await;

    let exit_code = match status {
        Ok(status) => {
            use std::os::unix::process::ExitStatusExt;
            status.code().or_else(|| status.signal().map(|s| 128 + s))
        }
        Err(e) => {
            let reason = format!("lost track of the bash process: {e}");
            log.line(Stream::Gust, reason.clone()).await;
            return Outcome::failed(None, reason);
        }
    };
    let code_text = exit_code.map_or("unknown".to_string(), |c| c.to_string());
    if interrupted {
        return Outcome::interrupted(exit_code);
    }
    if let Some(limit) = timed_out {
        log.line(Stream::Gust, format!("task timed out; exit code {code_text}")).await;
        return Outcome::failed(exit_code, format!("timed out after {limit:?} (execution_timeout)"));
    }
    log.line(Stream::Gust, format!("command exited with code {code_text}")).await;
    match exit_code {
        Some(0) => Outcome { state: TaskState::Success, exit_code, failure_reason: None, interrupted: false },
        _ => Outcome::failed(exit_code, format!("exit code {code_text}")),
    }
}

/// Makes the kernel kill the task's shell when the worker dies (even by
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
            log.line(Stream::Gust, format!("still running {:?} after SIGTERM; sending SIGKILL", limits.kill_grace)).await;
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

async fn pump(reader: Option<impl AsyncRead + Unpin>, log: LogSink, stream: Stream) {
    let Some(reader) = reader else { return };
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    buf.pop();
                }
                buf.truncate(MAX_LINE_BYTES);
                log.line(stream, String::from_utf8_lossy(&buf).into_owned()).await;
            }
        }
    }
}
