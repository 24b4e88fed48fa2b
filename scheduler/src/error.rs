//! Errors the scheduler reports.

use gust_shared::{amqp::AmqpError, db::DbError, health::OpsServerError};

/// Why a scheduler operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// PostgreSQL failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// RabbitMQ failed.
    #[error(transparent)]
    Amqp(#[from] AmqpError),
    /// The ops server could not listen.
    #[error(transparent)]
    Ops(#[from] OpsServerError),
    /// A run names a DAG version that does not exist.
    #[error("DAG version {0} is missing")]
    MissingVersion(i64),
}

impl From<tokio_postgres::Error> for SchedulerError {
    fn from(e: tokio_postgres::Error) -> Self {
        SchedulerError::Db(e.into())
    }
}

impl From<deadpool_postgres::PoolError> for SchedulerError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        SchedulerError::Db(e.into())
    }
}
