//! Errors the worker reports.

use gust_shared::{amqp::AmqpError, db::DbError, health::OpsServerError};

/// Why the worker stopped.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// PostgreSQL failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// RabbitMQ failed.
    #[error(transparent)]
    Amqp(#[from] AmqpError),
    /// The ops server could not listen.
    #[error(transparent)]
    Ops(#[from] OpsServerError),
    /// The broker closed our consumer.
    #[error("RabbitMQ closed the consumer of queue `{0}`")]
    ConsumerClosed(String),
}

impl From<lapin::Error> for WorkerError {
    fn from(e: lapin::Error) -> Self {
        WorkerError::Amqp(e.into())
    }
}
