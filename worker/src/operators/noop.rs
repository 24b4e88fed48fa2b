//! `noop`: succeeds at once; useful for joins and for measuring overhead.

use gust_shared::message::TaskMessage;
use tokio_util::sync::CancellationToken;

use super::{Operator, OperatorFuture, Outcome, RunLimits};
use crate::log_sink::LogSink;

/// The `noop` operator.
pub struct Noop;

impl Operator for Noop {
    fn run<'a>(
        &'a self,
        _task: &'a TaskMessage,
        _log: &'a LogSink,
        _limits: &'a RunLimits,
        _stop: &'a CancellationToken,
    ) -> OperatorFuture<'a> {
        Box::pin(async { Outcome::success() })
    }
}
