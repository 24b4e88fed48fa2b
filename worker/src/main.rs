//! The `gust-worker` binary.

use gust_shared::cli;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Some(settings) =
        cli::start("gust-worker", "A gust worker: runs the tasks of its RabbitMQ queues and records their outcome.")
            .await?
    else {
        return Ok(());
    };
    gust_worker::run(settings, cli::shutdown_signal()).await?;
    Ok(())
}
