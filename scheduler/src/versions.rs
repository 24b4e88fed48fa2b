//! An in-memory cache of DAG versions. Versions never change once written,
//! so a cached one is never stale.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use gust_shared::{
    dag::Dag,
    db::{dags, GenericClient},
};

use crate::error::SchedulerError;

/// DAG definitions by version id.
#[derive(Default)]
pub struct VersionCache {
    versions: Mutex<HashMap<i64, Arc<Dag>>>,
}

impl VersionCache {
    /// The definition of `version_id`, loaded on first use.
    pub async fn get(&self, db: &impl GenericClient, version_id: i64) -> Result<Arc<Dag>, SchedulerError> {
        if let Some(dag) = self.versions.lock().expect("cache lock").get(&version_id) {
            return Ok(dag.clone());
        }
        let version = dags::version(db, version_id).await?.ok_or(SchedulerError::MissingVersion(version_id))?;
        let dag = Arc::new(version.definition);
        self.versions.lock().expect("cache lock").insert(version_id, dag.clone());
        Ok(dag)
    }
}
