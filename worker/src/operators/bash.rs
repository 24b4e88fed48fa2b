//! `bash`: runs `bash -c <command>` as the try's process (see [`super::process`]:
//! own process group, streamed output, timeout and shutdown kill the group).

use gust_shared::{dag::OperatorSpec, message::TaskMessage, state::TaskState};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::{process, Operator, OperatorFuture, Outcome, RunLimits};
use crate::log_sink::{LogSink, Stream};

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
    let (command, env, cwd, push_last_line) = match &task.operator {
        OperatorSpec::Bash { command, env, cwd, do_xcom_push } => (command, env, cwd, *do_xcom_push),
        OperatorSpec::Branch { command, env, cwd } => (command, env, cwd, true),
        _ => {
            log.line(Stream::Gust, "bash operator got a message for another operator").await;
            return Outcome::failed(None, "bash operator got a message for another operator");
        }
    };
    let files = match process::TryFiles::create(task, cwd.as_deref(), log).await {
        Ok(files) => files,
        Err(outcome) => return outcome,
    };
    let mut bash = Command::new("bash");
    bash.arg("-c").arg(command).envs(&task.env).envs(env).env("GUST_XCOM", &files.xcom_file);
    let (mut outcome, last_line) = process::run(task, bash, "`bash -c`", None, &files.workdir, log, limits, stop).await;
    if outcome.state == TaskState::Success {
        outcome =
            process::with_xcom(outcome, &files.xcom_file, push_last_line.then_some(last_line).flatten(), limits, log)
                .await;
        if task.operator.is_branch() && outcome.state == TaskState::Success && outcome.xcom.is_none() {
            let reason = "branch task pushed no XCom: print the task id (or a JSON list of ids) to follow as the last line of stdout, or write it to $GUST_XCOM";
            log.line(Stream::Gust, reason).await;
            outcome = Outcome::failed(outcome.exit_code, reason);
        }
    }
    outcome
}
