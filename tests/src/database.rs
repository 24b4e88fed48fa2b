//! One throw-away PostgreSQL database per test: created, migrated and
//! connected by [`isolated`], dropped again when the [`TestDatabase`] is
//! dropped. Every fixture that needs a database gets it here
//! ([`crate::api::TestApi`], [`crate::isolated_settings`], and so
//! [`crate::TestStack`]); tests of the SQL alone (compare-and-set rules,
//! no RabbitMQ, no daemons) use it directly:
//!
//! ```no_run
//! # async fn example() {
//! let database = gust_tests::database::isolated().await;
//! let client = database.pool.get().await.unwrap();
//! client.execute("SELECT 1", &[]).await.unwrap();
//! // `database` is dropped at the end of the test, and with it `gust_test_<uuid>`.
//! # }
//! ```
//!
//! The server is the one of `GUST__DATABASE__URL` (its database name is
//! replaced), or `GUST_TEST_POSTGRES` (a server URL without a database name)
//! when set, else `postgres://postgres@127.0.0.1:5432`.

use deadpool_postgres::Pool;
use gust_shared::db;

/// Connections in a [`TestDatabase`]'s pool.
pub const POOL_SIZE: usize = 4;

/// A freshly migrated database of its own, with a pool on it.
///
/// Dropping it drops the database (`DROP DATABASE … WITH (FORCE)`, from a
/// thread of its own, so it also works while a failed test unwinds); call
/// [`TestDatabase::keep`] to take it over instead.
pub struct TestDatabase {
    /// The database's URL, e.g. `postgres://postgres@127.0.0.1:5432/gust_test_<uuid>`
    /// (for settings and child processes).
    pub url: String,
    /// A pool of [`POOL_SIZE`] connections on it.
    pub pool: Pool,
    drop_when_dropped: bool,
}

/// The database URL the test databases are made next to (its name is replaced).
pub fn server_url() -> String {
    if let Ok(server) = std::env::var("GUST_TEST_POSTGRES") {
        return format!("{}/gust", server.trim_end_matches('/'));
    }
    std::env::var("GUST__DATABASE__URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/gust".into())
}

/// Creates `gust_test_<uuid>`, applies every migration and connects a pool.
///
/// Panics, saying how to start PostgreSQL or which variable points elsewhere,
/// when the server cannot be reached: a test that needs the database never
/// passes without it.
pub async fn isolated() -> TestDatabase {
    isolated_on(&server_url()).await
}

/// [`isolated`] on the server (or servers, of a multi-host URL) that `server` names.
pub async fn isolated_on(server: &str) -> TestDatabase {
    let name = format!("gust_test_{}", uuid::Uuid::new_v4().simple());
    let url = db::with_database(server, &name);
    if let Err(error) = db::migrate(&url).await {
        panic!(
            "PostgreSQL is needed for this test and is not usable: {error}\n\
             Start it with `GUST_CI_SERVICES_ONLY=1 bash .ci/run` (installs and starts PostgreSQL and RabbitMQ), \
             or `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`; \
             the tests expect user postgres with trust auth on 127.0.0.1:5432, \
             or set GUST__DATABASE__URL (or GUST_TEST_POSTGRES) to another server (see README.md)."
        );
    }
    let pool = match db::connect(&url, POOL_SIZE).await {
        Ok(pool) => pool,
        Err(error) => {
            let _ = db::drop_database(&url).await;
            panic!("connecting to the freshly migrated test database {url}: {error}");
        }
    };
    TestDatabase { url, pool, drop_when_dropped: true }
}

impl TestDatabase {
    /// Hands the database over to the caller, who is then the one to drop it
    /// (with [`gust_shared::db::drop_database`], as [`crate::TestStack::stop`] does).
    pub fn keep(mut self) -> (String, Pool) {
        self.drop_when_dropped = false;
        (std::mem::take(&mut self.url), self.pool.clone())
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if !self.drop_when_dropped {
            return;
        }
        self.pool.close();
        let url = self.url.clone();
        // Drop runs inside the test's runtime (maybe while unwinding): drop the database from a fresh one.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("build a runtime for clean-up")
                .block_on(db::drop_database(&url))
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("could not drop test database {}: {error}", self.url),
            Err(_) => eprintln!("clean-up of test database {} panicked", self.url),
        }
    }
}
