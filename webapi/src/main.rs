//! `gust-webapi`: serves the HTTP API until ctrl-c or SIGTERM.

use std::io::BufRead;

use anyhow::{bail, Context};
use gust_shared::{
    cli::{self, CreateUserArgs, StartMode, WebapiArgs, WebapiCommand},
    db,
    settings::Settings,
};
use gust_webapi::{
    auth::{self, Role},
    AppState,
};

/// Environment variable `create-user` reads the new password from.
const NEW_PASSWORD_VAR: &str = "GUST_NEW_USER_PASSWORD";

/// `gust-webapi rotate-secrets`: re-encrypts every stored connection with the first
/// key of `GUST__SECRETS__KEY`, in one transaction (Airflow's `rotate-fernet-key`).
async fn rotate_secrets() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    let Some(secrets) = settings.secrets.secrets()? else {
        bail!(
            "GUST__SECRETS__KEY is not set; set it to the new key followed by the old one, comma-separated, e.g. GUST__SECRETS__KEY=NEW,OLD"
        );
    };
    let pool = db::connect(&settings.database.url, 1).await?;
    let mut client = pool.get().await.context("connecting to the gust database")?;
    let tx = client.transaction().await.context("starting a transaction")?;
    let count = gust_shared::connections::rotate_all(&tx, &secrets)
        .await
        .context("re-encrypting connections (is every old key still in GUST__SECRETS__KEY?)")?;
    tx.commit().await.context("committing the re-encrypted connections")?;
    println!(
        "re-encrypted {count} connections with the first key of GUST__SECRETS__KEY; the other keys may now be removed"
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: WebapiArgs = cli::parse_or_exit(
        "gust-webapi",
        "The gust webapi: the Airflow-compatible HTTP API and the web UI; also creates users and rotates secrets.",
    );
    gust_shared::telemetry::init();
    match args.command {
        Some(WebapiCommand::CreateUser(user)) => return create_user(user).await,
        Some(WebapiCommand::RotateSecrets) => return rotate_secrets().await,
        Some(WebapiCommand::Migrate) | None => {}
    }
    let mode = args.start_mode();
    let settings = Settings::load()?;
    if matches!(mode, StartMode::MigrateOnly | StartMode::MigrateThenRun) {
        db::migrate(&settings.database.url).await?;
        if mode == StartMode::MigrateOnly {
            tracing::info!("migrations applied");
            return Ok(());
        }
    }
    let pool = db::connect(&settings.database.url, settings.database.pool_size).await?;
    auth::bootstrap_users(&pool, &settings.auth)
        .await
        .context("creating the admin user from GUST__AUTH__ADMIN_USERNAME")?;
    let bind = &settings.webapi.bind;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind}; free the port or set GUST__WEBAPI__BIND"))?;
    let state = AppState::from_settings(pool, &settings)?;
    match (&settings.webapi.tls_cert, &settings.webapi.tls_key) {
        (Some(cert), Some(key)) => gust_webapi::serve_tls(listener, state, cli::shutdown_signal(), cert, key).await?,
        _ => gust_webapi::serve(listener, state, cli::shutdown_signal()).await?,
    }
    tracing::info!("gust-webapi stopped");
    Ok(())
}

/// `create-user`: creates or updates one user, the password from the environment or standard input.
async fn create_user(args: CreateUserArgs) -> anyhow::Result<()> {
    let role: Role = args.role.parse()?;
    let password = match std::env::var(NEW_PASSWORD_VAR) {
        Ok(password) => password,
        Err(_) => {
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                eprintln!("password for {} (or set {NEW_PASSWORD_VAR}):", args.username);
            }
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).context("reading the password from standard input")?;
            line.trim_end_matches(['\n', '\r']).to_string()
        }
    };
    if password.is_empty() {
        bail!("no password: set {NEW_PASSWORD_VAR} or pipe it on standard input");
    }
    let settings = Settings::load()?;
    let pool = db::connect(&settings.database.url, 1).await?;
    let created = auth::create_or_update_user(&pool, &args.username, &password, role).await?;
    let what = if created { "created" } else { "updated" };
    tracing::info!(username = %args.username, %role, "{what} user");
    println!("{what} user {} with role {role}", args.username);
    Ok(())
}
