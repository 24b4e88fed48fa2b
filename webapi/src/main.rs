//! `gust-webapi`: serves the HTTP API until ctrl-c or SIGTERM.

use anyhow::Context;
use gust_shared::{cli::StartMode, db, settings::Settings};
use gust_webapi::AppState;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    gust_shared::telemetry::init();
    let mode = match gust_shared::cli::parse_start_mode("gust-webapi", std::env::args().skip(1)) {
        Ok(mode) => mode,
        Err(usage) => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    let settings = Settings::load()?;
    if matches!(mode, StartMode::MigrateOnly | StartMode::MigrateThenRun) {
        db::migrate(&settings.database.url).await?;
        if mode == StartMode::MigrateOnly {
            tracing::info!("migrations applied");
            return Ok(());
        }
    }
    let pool = db::connect(&settings.database.url, settings.database.pool_size).await?;
    let bind = &settings.webapi.bind;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind}; free the port or set GUST__WEBAPI__BIND"))?;
    let state = AppState::new(pool)
        .with_max_body_bytes(settings.webapi.max_body_bytes)
        .with_liveness_threshold(settings.scheduler.zombie_threshold)
        .with_amqp_url(settings.amqp.url.clone());
    gust_webapi::serve(listener, state, shutdown_signal()).await?;
    tracing::info!("gust-webapi stopped");
    Ok(())
}

/// Completes on ctrl-c or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing open requests");
}
