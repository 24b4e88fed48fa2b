//! PostgreSQL: the connection pool, the embedded migrations, and one module
//! of queries per table family.

/// The SQL list of unfinished task instance states, the predicate of the
/// `task_instances_live` partial index, for `state IN` in queries served by it.
macro_rules! unfinished_states {
    () => {
        "('none', 'scheduled', 'queued', 'running', 'up_for_retry', 'up_for_reschedule')"
    };
}

pub mod assets;
pub mod backfills;
pub mod connection_tests;
pub mod connections;
pub mod dag_files;
pub mod dag_stats;
pub mod dag_warnings;
pub mod dags;
pub mod dead_letters;
pub mod event_log;
pub mod favorites;
pub mod filters;
pub mod heartbeats;
pub mod import_errors;
pub mod jobs;
pub mod logs;
pub mod metrics;
pub mod planner_statistics;
pub mod pools;
pub mod providers;
pub mod retention;
pub mod runs;
pub mod sensors;
pub mod signals;
pub mod task_instances;
pub mod tls;
pub mod ui;
pub mod users;
pub mod variables;
pub mod xcom;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};

use crate::settings::redact_url;

pub use deadpool_postgres::GenericClient;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Why a database operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The server could not be reached or refused us.
    #[error("cannot reach PostgreSQL at {url}: {cause}; start it or set GUST__DATABASE__URL")]
    Unreachable {
        /// The URL without its password.
        url: String,
        /// What the driver said.
        cause: String,
    },
    /// The URL is not a valid PostgreSQL URL.
    #[error("GUST__DATABASE__URL `{url}` is not a valid PostgreSQL URL: {cause}")]
    BadUrl {
        /// The URL without its password.
        url: String,
        /// What the parser said.
        cause: String,
    },
    /// The schema is older than this build.
    #[error("the database at {url} has no gust schema (or an old one); run `gust-scheduler migrate` or start a component with --migrate")]
    NotMigrated {
        /// The URL without its password.
        url: String,
    },
    /// A query failed.
    #[error("database error: {}", describe_pg_error(.0))]
    Query(#[from] tokio_postgres::Error),
    /// No connection could be taken from the pool.
    #[error("database pool error: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// A migration failed.
    #[error("database migration failed: {0}")]
    Migration(#[from] refinery::Error),
    /// A stored value does not parse (e.g. a DAG definition written by another version).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
}

impl DbError {
    /// True when trying again later can succeed: the server is down,
    /// restarting, overloaded, or the transaction lost a race.
    pub fn is_transient(&self) -> bool {
        match self {
            DbError::Unreachable { .. } | DbError::Pool(_) => true,
            DbError::Query(e) => match e.code() {
                None => true,
                Some(code) => {
                    let code = code.code();
                    code.starts_with("08")
                        || code.starts_with("57P")
                        || code.starts_with("53")
                        || code == "40001"
                        || code == "40P01"
                }
            },
            DbError::BadUrl { .. } | DbError::NotMigrated { .. } | DbError::Migration(_) | DbError::Corrupt(_) => false,
        }
    }
}

fn parse_url(url: &str) -> Result<tls::ConnectSpec, DbError> {
    tls::connect_spec(url)
}

/// One connection to the database outside any pool, and the task that drives it.
pub type SingleConnection = tokio_postgres::Connection<
    tokio_postgres::Socket,
    <tokio_postgres_rustls::MakeRustlsConnect as tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>>::Stream,
>;

fn unreachable(url: &str, error: impl std::fmt::Display) -> DbError {
    DbError::Unreachable { url: redact_url(url), cause: error.to_string() }
}

/// Builds the pool and checks that the database answers and is migrated.
pub async fn connect(url: &str, pool_size: usize) -> Result<Pool, DbError> {
    parse_url(url)?;
    let pool = lazy_pool(url, pool_size);
    let client = pool.get().await.map_err(|e| match e {
        deadpool_postgres::PoolError::Backend(pg) => unreachable(url, describe_pg_error(&pg)),
        other => unreachable(url, other),
    })?;
    let migrated: bool = client.query_one("SELECT to_regclass('public.task_logs') IS NOT NULL", &[]).await?.get(0);
    if !migrated {
        return Err(DbError::NotMigrated { url: redact_url(url) });
    }
    Ok(pool)
}

/// A pool that connects on first use, for tools that may never need the
/// database (`gust tasks test`); a malformed URL gives a pool whose every use fails.
pub fn lazy_pool(url: &str, pool_size: usize) -> Pool {
    let (config, tls) = match parse_url(url) {
        Ok(spec) => (with_dead_peer_timeouts(without_jit(spec.config)), spec.tls),
        Err(_) => (tokio_postgres::Config::default(), tls::plain_connector()),
    };
    let manager = Manager::from_config(config, tls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Pool::builder(manager).max_size(pool_size).build().expect("pool config without runtime hooks is valid")
}

/// The same connection settings with PostgreSQL's JIT compilation off for the session.
///
/// Measured (issue 19): once `task_instances` had statistics of a 10,000-task
/// run, the dispatch statement's estimated cost passed `jit_above_cost`
/// (100,000) and PostgreSQL compiled it, with inlining and optimization, on
/// every execution: about 950 ms each instead of a few ms, and the workers
/// waited on the rows it held (a fan-out ran at 416 tasks/s instead of
/// 1,245). JIT pays off for analytical queries that run for seconds; gust's
/// statements are short, so it is off for every gust connection. An `options`
/// setting in the URL is kept; `-c jit=on` there turns it back on.
fn without_jit(mut config: tokio_postgres::Config) -> tokio_postgres::Config {
    let options = match config.get_options() {
        Some(given) => format!("-c jit=off {given}"),
        None => "-c jit=off".to_string(),
    };
    config.options(&options);
    config
}

/// How long data sent to PostgreSQL may stay unacknowledged before the
/// connection counts as dead (`tcp_user_timeout`), unless the URL sets it.
const TCP_USER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// How long an idle connection waits before TCP keepalive probes start, unless the URL sets it.
const KEEPALIVES_IDLE: std::time::Duration = std::time::Duration::from_secs(30);

/// The same settings, with a dead server noticed in tens of seconds instead of minutes.
///
/// Measured (issue 20, a worker partitioned from PostgreSQL in a network
/// namespace): without these, a query on a connection whose packets vanish
/// waits for the kernel's retransmissions, about 15 minutes, with no error.
/// A write now fails after `TCP_USER_TIMEOUT` and is retried on a fresh
/// connection; an idle pooled connection to a vanished server is found dead
/// by keepalives. `tcp_user_timeout` or `keepalives_idle` in the URL win.
fn with_dead_peer_timeouts(mut config: tokio_postgres::Config) -> tokio_postgres::Config {
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(TCP_USER_TIMEOUT);
    }
    if config.get_keepalives_idle() == tokio_postgres::Config::new().get_keepalives_idle() {
        config.keepalives_idle(KEEPALIVES_IDLE);
    }
    config
}

/// Opens one connection outside any pool (for LISTEN and migrations).
pub async fn connect_single(url: &str) -> Result<(tokio_postgres::Client, SingleConnection), DbError> {
    let spec = parse_url(url)?;
    with_dead_peer_timeouts(spec.config).connect(spec.tls).await.map_err(|e| unreachable(url, describe_pg_error(&e)))
}

/// Creates the database if it is missing, then applies the embedded migrations
/// under an advisory lock so concurrent starters do not race.
pub async fn migrate(url: &str) -> Result<(), DbError> {
    ensure_database_exists(url).await?;
    let (mut client, connection) = connect_single(url).await?;
    let driver = tokio::spawn(connection);
    signals::AdvisoryLock::Migration.lock_session(&client).await?;
    let result = embedded::migrations::runner().run_async(&mut client).await;
    signals::AdvisoryLock::Migration.unlock_session(&client).await?;
    let report = result?;
    for applied in report.applied_migrations() {
        tracing::info!(migration = %applied, "applied migration");
    }
    drop(client);
    let _ = driver.await;
    Ok(())
}

/// Creates the database named in `url` when it does not exist yet.
pub async fn ensure_database_exists(url: &str) -> Result<(), DbError> {
    let spec = parse_url(url)?;
    let Some(dbname) = spec.config.get_dbname().map(str::to_string) else { return Ok(()) };
    let mut admin = spec.config.clone();
    admin.dbname("postgres");
    let (client, connection) = admin.connect(spec.tls).await.map_err(|e| unreachable(url, describe_pg_error(&e)))?;
    tokio::spawn(connection);
    let exists = client.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&dbname]).await?.is_some();
    if !exists {
        let quoted = format!("\"{}\"", dbname.replace('"', "\"\""));
        match client.batch_execute(&format!("CREATE DATABASE {quoted}")).await {
            Ok(()) => tracing::info!(database = %dbname, "created database"),
            // Another starter created it between our check and our CREATE.
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// `url` with its database name replaced by `name` (query string and every
/// host kept), for tools that make scratch databases next to the configured
/// one; a keyword string (`host=… dbname=…`) gets its `dbname` replaced.
pub fn with_database(url: &str, name: &str) -> String {
    if !url.contains("://") {
        let mut words: Vec<String> =
            url.split_whitespace().filter(|word| !word.starts_with("dbname=")).map(str::to_string).collect();
        words.push(format!("dbname={name}"));
        return words.join(" ");
    }
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, format!("?{query}")),
        None => (url, String::new()),
    };
    let server = match head.rsplit_once('/') {
        Some((server, _)) if server.contains("://") && !server.ends_with('/') => server.to_string(),
        _ => head.trim_end_matches('/').to_string(),
    };
    format!("{server}/{name}{query}")
}

/// Drops the database named in `url` (test clean-up).
pub async fn drop_database(url: &str) -> Result<(), DbError> {
    let spec = parse_url(url)?;
    let Some(dbname) = spec.config.get_dbname().map(str::to_string) else { return Ok(()) };
    let mut admin = spec.config.clone();
    admin.dbname("postgres");
    let (client, connection) = admin.connect(spec.tls).await.map_err(|e| unreachable(url, describe_pg_error(&e)))?;
    tokio::spawn(connection);
    let quoted = format!("\"{}\"", dbname.replace('"', "\"\""));
    client.batch_execute(&format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")).await?;
    Ok(())
}

/// `text` without NUL characters, which PostgreSQL text columns cannot hold
/// (a task may print them); each becomes U+FFFD.
pub fn storable_text(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        std::borrow::Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// The most useful one-line description of a driver error.
pub fn describe_pg_error(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return db.message().to_string();
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text = inner.to_string();
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::{storable_text, with_database};

    #[test]
    fn with_database_swaps_only_the_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/gust", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(with_database("postgres://u:p@h:1/db?sslmode=disable", "x"), "postgres://u:p@h:1/x?sslmode=disable");
        assert_eq!(with_database("postgres://h:1", "x"), "postgres://h:1/x");
        assert_eq!(
            with_database("postgres://u@h1:1,h2:2/db?target_session_attrs=read-write", "x"),
            "postgres://u@h1:1,h2:2/x?target_session_attrs=read-write"
        );
        assert_eq!(with_database("host=h1,h2 port=1,2 dbname=db user=u", "x"), "host=h1,h2 port=1,2 user=u dbname=x");
    }

    #[test]
    fn a_dead_server_is_noticed_in_seconds_unless_the_url_says_otherwise() {
        let config = |url: &str| super::with_dead_peer_timeouts(super::parse_url(url).expect("a valid URL").config);
        let defaults = config("postgres://h/gust");
        assert_eq!(defaults.get_tcp_user_timeout(), Some(&super::TCP_USER_TIMEOUT));
        assert_eq!(defaults.get_keepalives_idle(), super::KEEPALIVES_IDLE);
        let given = config("postgres://h/gust?tcp_user_timeout=5&keepalives_idle=7");
        assert_eq!(given.get_tcp_user_timeout(), Some(&std::time::Duration::from_secs(5)));
        assert_eq!(given.get_keepalives_idle(), std::time::Duration::from_secs(7));
    }

    #[test]
    fn the_unfinished_states_list_is_every_state_the_state_machine_calls_unfinished() {
        let listed: Vec<&str> =
            unfinished_states!().trim_matches(['(', ')']).split(", ").map(|s| s.trim_matches('\'')).collect();
        let unfinished: Vec<&str> =
            crate::state::ALL_TASK_STATES.iter().filter(|s| !s.is_finished()).map(|s| s.as_str()).collect();
        assert_eq!(listed, unfinished);
    }

    #[test]
    fn nul_characters_are_replaced_before_storing() {
        assert_eq!(storable_text("a\0b"), "a\u{FFFD}b");
        assert!(matches!(storable_text("plain"), std::borrow::Cow::Borrowed("plain")));
    }
}
