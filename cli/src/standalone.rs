//! `gust standalone` (Airflow's `airflow standalone`): the whole engine in
//! one process against the configured PostgreSQL and RabbitMQ. It applies
//! the migrations, makes sure there is an admin (the configured one, or
//! `admin` with a generated password printed once, when it is created), then
//! runs a scheduler, a worker and the webapi (UI and API) until ctrl-c or
//! SIGTERM, and stops them as the daemons stop.

use std::io::Write;

use gust_shared::{
    cli::shutdown_signal,
    db::{self, DbError},
    settings::{Settings, SettingsError},
};
use gust_webapi::{
    auth::{self, AuthError, Role},
    AppState,
};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The admin `gust standalone` creates when no admin is configured.
pub const STANDALONE_ADMIN: &str = "admin";

/// Why the standalone engine could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StandaloneError {
    /// The settings are broken.
    #[error("cannot read the settings: {0}")]
    Settings(#[from] SettingsError),
    /// The database cannot be reached or migrated.
    #[error(transparent)]
    Database(#[from] DbError),
    /// The admin could not be created.
    #[error("cannot create the admin: {0}")]
    Admin(#[from] AuthError),
    /// The webapi's address cannot be bound.
    #[error("cannot listen on {bind}: {source}; free the port or set GUST__WEBAPI__BIND")]
    Bind {
        /// The address.
        bind: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// A component failed.
    #[error("{component} failed: {message}")]
    Component {
        /// `scheduler`, `worker` or `webapi`.
        component: &'static str,
        /// Its error.
        message: String,
    },
    /// Writing to standard output failed.
    #[error("cannot write the output: {0}")]
    Write(#[from] std::io::Error),
}

/// Runs the engine until ctrl-c or SIGTERM.
pub async fn run() -> Result<(), StandaloneError> {
    gust_shared::telemetry::init();
    let settings = Settings::load()?;
    db::migrate(&settings.database.url).await?;
    let pool = db::connect(&settings.database.url, settings.database.pool_size).await?;
    let admin = ensure_admin(&pool, &settings).await?;
    let bind = settings.webapi.bind.clone();
    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .map_err(|source| StandaloneError::Bind { bind: bind.clone(), source })?;
    let address = listener.local_addr().map(|a| a.to_string()).unwrap_or(bind);
    let state = AppState::from_settings(pool, &settings)?;

    // Listening before the lines below are printed: a script that reads them may stop us at once.
    let shutdown = shutdown_signal();
    let stop = CancellationToken::new();
    let mut components = JoinSet::new();
    // One ops server (GUST__METRICS__BIND or GUST__HEALTH__BIND) per process: the scheduler's.
    let (scheduler_settings, worker_settings) = (settings.clone(), settings.clone().without_ops_server());
    let (scheduler_stop, worker_stop, webapi_stop) = (stop.clone(), stop.clone(), stop.clone());
    components.spawn(async move {
        ("scheduler", gust_scheduler::run(scheduler_settings, scheduler_stop.cancelled_owned()).await.map_err(message))
    });
    components.spawn(async move {
        ("worker", gust_worker::run(worker_settings, worker_stop.cancelled_owned()).await.map_err(message))
    });
    components.spawn(async move {
        ("webapi", gust_webapi::serve(listener, state, webapi_stop.cancelled_owned()).await.map_err(message))
    });
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "gust standalone is running: UI and API on http://{address}  (ctrl-c stops it)")?;
        writeln!(out, "DAG folder: {}", settings.dags.folder.display())?;
        match &admin {
            Admin::Created(password) => writeln!(
                out,
                "created user `{STANDALONE_ADMIN}` with role admin and password: {password}\n\
                 (shown once; change it with `gust-webapi create-user --username {STANDALONE_ADMIN} --role admin`)"
            )?,
            Admin::Configured(username) => writeln!(out, "admin user: {username} (GUST__AUTH__ADMIN_USERNAME)")?,
            Admin::Existing => writeln!(
                out,
                "user `{STANDALONE_ADMIN}` exists; its password was printed when it was created \
                 (reset it with `gust-webapi create-user --username {STANDALONE_ADMIN} --role admin`)"
            )?,
        }
        out.flush()?;
    }

    // A component that ends before the signal ended early: that is an error too.
    let mut failure = tokio::select! {
        () = shutdown => None,
        Some(ended) = components.join_next() => Some(failure_of(ended).unwrap_or_else(|| StandaloneError::Component {
            component: "a component",
            message: "it stopped early; its log above says why".into(),
        })),
    };
    stop.cancel();
    while let Some(ended) = components.join_next().await {
        if let Some(error) = failure_of(ended) {
            failure.get_or_insert(error);
        }
    }
    failure.map_or(Ok(()), Err)
}

fn message(error: impl std::fmt::Display) -> String {
    error.to_string()
}

/// The error of a component that ended, if it failed or panicked.
fn failure_of(ended: Result<(&'static str, Result<(), String>), tokio::task::JoinError>) -> Option<StandaloneError> {
    match ended {
        Ok((_, Ok(()))) => None,
        Ok((component, Err(message))) => Some(StandaloneError::Component { component, message }),
        Err(panic) => Some(StandaloneError::Component { component: "a component", message: panic.to_string() }),
    }
}

/// Which admin the engine has.
enum Admin {
    /// `admin` was created now with this password.
    Created(String),
    /// The configured admin (`GUST__AUTH__ADMIN_USERNAME`), created or kept as the webapi does.
    Configured(String),
    /// `admin` existed already.
    Existing,
}

async fn ensure_admin(pool: &deadpool_postgres::Pool, settings: &Settings) -> Result<Admin, StandaloneError> {
    if let Some(username) = &settings.auth.admin_username {
        auth::bootstrap_users(pool, &settings.auth).await?;
        return Ok(Admin::Configured(username.clone()));
    }
    let client = pool.get().await.map_err(DbError::Pool)?;
    if db::users::get(&client, STANDALONE_ADMIN).await?.is_some() {
        return Ok(Admin::Existing);
    }
    let password = uuid::Uuid::new_v4().simple().to_string()[..20].to_string();
    auth::create_or_update_user(pool, STANDALONE_ADMIN, &password, Role::Admin).await?;
    Ok(Admin::Created(password))
}
