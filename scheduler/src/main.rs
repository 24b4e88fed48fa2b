//! The `gust-scheduler` binary.

use gust_shared::cli;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Some(settings) = cli::start(
        "gust-scheduler",
        "The gust scheduler: keeps the DAG folder in the database, creates runs and sends due tasks to RabbitMQ.",
    )
    .await?
    else {
        return Ok(());
    };
    gust_scheduler::run(settings, cli::shutdown_signal()).await?;
    Ok(())
}
