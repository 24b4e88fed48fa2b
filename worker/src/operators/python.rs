//! `python`: calls `module:function` with the task's `op_kwargs` in a
//! Python interpreter run as the try's process (see [`super::process`]: own
//! process group, streamed output, timeout and shutdown kill the group). A
//! small runner script reads the call from stdin as JSON and writes the
//! JSON-serialisable return value to `$GUST_XCOM`.

use std::path::PathBuf;

use gust_shared::{dag::OperatorSpec, message::TaskMessage, state::TaskState};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::{process, Operator, OperatorFuture, Outcome, RunLimits};
use crate::log_sink::{LogSink, Stream};

/// The runner: imports the callable, calls it, writes its return value; on a
/// problem writes a reason to `$GUST_PYTHON_ERROR` and exits non-zero.
const RUNNER: &str = r#"
import importlib, json, os, sys, traceback

def fail(reason, code=3):
    with open(os.environ["GUST_PYTHON_ERROR"], "w") as out:
        out.write(reason)
    print("gust: " + reason, file=sys.stderr, flush=True)
    sys.exit(code)

call = json.load(sys.stdin)
sys.stdin = open(os.devnull)
for folder in reversed(call["python_path"]):
    sys.path.insert(0, folder)
name = call["callable"]
module_name, _, function_name = name.partition(":")
try:
    target = importlib.import_module(module_name)
except Exception as error:
    traceback.print_exc()
    fail("python_callable `%s`: cannot import module `%s` (%s: %s); check python_path and the interpreter"
         % (name, module_name, type(error).__name__, error))
for part in function_name.split("."):
    if not hasattr(target, part):
        fail("python_callable `%s`: module `%s` has no `%s`" % (name, module_name, function_name))
    target = getattr(target, part)
if not callable(target):
    fail("python_callable `%s` is not callable" % name)
try:
    result = target(**call["kwargs"])
except SystemExit:
    raise
except BaseException as error:
    traceback.print_exc()
    fail("python_callable `%s` raised %s: %s" % (name, type(error).__name__, error), 1)
if result is not None:
    try:
        text = json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as error:
        fail("the return value of python_callable `%s` is not JSON-serialisable (%s); return a dict, list, str, number, bool or None"
             % (name, error))
    with open(os.environ["GUST_XCOM"], "w") as out:
        out.write(text)
"#;

/// The `python` operator.
pub struct Python;

impl Operator for Python {
    fn run<'a>(
        &'a self,
        task: &'a TaskMessage,
        log: &'a LogSink,
        limits: &'a RunLimits,
        stop: &'a CancellationToken,
    ) -> OperatorFuture<'a> {
        Box::pin(run_python(task, log, limits, stop))
    }
}

/// The interpreter to run: `python` as given (a virtualenv folder means its
/// `bin/python`), else `python3` from `PATH`.
fn interpreter(python: Option<&str>) -> PathBuf {
    match python {
        None => PathBuf::from("python3"),
        Some(path) => {
            let path = PathBuf::from(path);
            if path.is_dir() {
                path.join("bin/python")
            } else {
                path
            }
        }
    }
}

async fn run_python(task: &TaskMessage, log: &LogSink, limits: &RunLimits, stop: &CancellationToken) -> Outcome {
    let OperatorSpec::Python(args) = &task.operator else {
        log.line(Stream::Gust, "python operator got a message for another operator").await;
        return Outcome::failed(None, "python operator got a message for another operator");
    };
    let mut files = match process::TryFiles::create(task, None, log).await {
        Ok(files) => files,
        Err(outcome) => return outcome,
    };
    let error_file = files.extra("python-error");
    let python = interpreter(args.python.as_deref());
    let call = serde_json::json!({
        "callable": args.python_callable,
        "python_path": args.python_path,
        "kwargs": args.op_kwargs,
    });
    let mut command = Command::new(&python);
    command
        .arg("-u")
        .arg("-c")
        .arg(RUNNER)
        .envs(&task.env)
        .env("GUST_XCOM", &files.xcom_file)
        .env("GUST_PYTHON_ERROR", &error_file);
    let what = format!("{} calling `{}`", python.display(), args.python_callable);
    let (outcome, _) =
        process::run(task, command, &what, Some(call.to_string().into_bytes()), &files.workdir, log, limits, stop)
            .await;
    if outcome.state == TaskState::Success {
        return process::with_xcom(outcome, &files.xcom_file, None, limits, log).await;
    }
    match std::fs::read_to_string(&error_file) {
        Ok(reason) if !reason.trim().is_empty() && !outcome.interrupted => {
            Outcome { failure_reason: Some(reason.trim().to_string()), ..outcome }
        }
        _ => outcome,
    }
}
