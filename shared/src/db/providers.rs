//! The custom operators live workers advertise (`component_heartbeats.operators`,
//! written from `gust-op-<name> --describe` when a worker starts), for the
//! providers and plugins listings.

use super::{DbError, GenericClient};

/// One custom operator as one live worker advertises it.
#[derive(Debug, Clone, PartialEq)]
pub struct AdvertisedOperator {
    /// The worker that has it.
    pub worker: String,
    /// The operator's name (`operator: <name>` in DAG files).
    pub name: String,
    /// The executable's path on that worker.
    pub path: Option<String>,
    /// The version `--describe` printed; `None` when it could not describe itself.
    pub version: Option<String>,
    /// The description `--describe` printed.
    pub description: Option<String>,
    /// Why `--describe` failed, when it did.
    pub describe_error: Option<String>,
}

/// Every custom operator of every live worker (the `live_workers` view), by name, then worker.
pub async fn custom_operators(db: &impl GenericClient) -> Result<Vec<AdvertisedOperator>, DbError> {
    let rows = db
        .query(
            r#"
SELECT h.name, o->>'name', o->>'path', o->>'version', o->>'description', o->>'describe_error'
FROM live_workers h, jsonb_array_elements(h.operators) o
WHERE o->>'kind' = 'custom' AND o ? 'name'
ORDER BY o->>'name', h.name"#,
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| AdvertisedOperator {
            worker: r.get(0),
            name: r.get(1),
            path: r.get(2),
            version: r.get(3),
            description: r.get(4),
            describe_error: r.get(5),
        })
        .collect())
}
