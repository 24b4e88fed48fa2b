//! The `gust-scheduler` binary.

use gust_shared::cli;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Some(settings) = cli::start("gust-scheduler").await? else { return Ok(()) };
    gust_scheduler::run(settings, cli::shutdown_signal()).await?;
    Ok(())
}
