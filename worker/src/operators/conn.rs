//! Connections as the built-in operators see them: `GUST_CONN_<ID>` in the
//! worker's environment first, then the `connections` table (decrypted with
//! `GUST__SECRETS__KEY`), through [`gust_shared::connections::resolve`].

use deadpool_postgres::Pool;
use gust_shared::{
    connections::{self, Connection},
    secrets::Secrets,
};

/// What the worker resolves connections with.
pub struct Connections {
    pool: Pool,
    secrets: Option<Secrets>,
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections").field("decrypts", &self.secrets.is_some()).finish_non_exhaustive()
    }
}

impl Connections {
    /// Resolves from the environment, then from the table on `pool`, decrypting with `secrets`.
    pub fn new(pool: Pool, secrets: Option<Secrets>) -> Self {
        Connections { pool, secrets }
    }

    /// Connection `conn_id`, or why it cannot be had (a reason for the task log).
    pub async fn resolve(&self, conn_id: &str) -> Result<Connection, String> {
        // An environment connection needs no database.
        if let Some(found) = Connection::from_env(conn_id).map_err(|e| e.to_string())? {
            return Ok(found);
        }
        let client = self
            .pool
            .get()
            .await
            .map_err(|e| format!("cannot read connection `{conn_id}`: the gust database is unreachable ({e})"))?;
        connections::resolve(&client, self.secrets.as_ref(), conn_id).await.map_err(|e| e.to_string())
    }
}
