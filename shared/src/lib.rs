//! What the gust binaries share: the DAG model and its parser, the task state
//! machine, the task message format, database access, the RabbitMQ topology,
//! settings and telemetry.

pub mod amqp;
pub mod cli;
pub mod dag;
pub mod db;
pub mod message;
pub mod settings;
pub mod state;
pub mod telemetry;
pub mod template;
