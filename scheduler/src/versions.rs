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

/// A DAG definition with its edges indexed both ways.
pub struct CachedDag {
    /// The definition.
    pub dag: Dag,
    /// Direct downstream task ids of each task.
    pub downstream: HashMap<String, Vec<String>>,
    /// Tasks nothing depends on: the ones that decide a run's outcome.
    pub leaves: Vec<String>,
}

impl CachedDag {
    /// Indexes a definition's edges.
    pub fn new(dag: Dag) -> Self {
        let mut downstream: HashMap<String, Vec<String>> = HashMap::new();
        for task in &dag.tasks {
            for up in &task.upstream {
                downstream.entry(up.clone()).or_default().push(task.task_id.clone());
            }
        }
        let leaves =
            dag.tasks.iter().filter(|t| !downstream.contains_key(&t.task_id)).map(|t| t.task_id.clone()).collect();
        CachedDag { dag, downstream, leaves }
    }
}

impl std::ops::Deref for CachedDag {
    type Target = Dag;
    fn deref(&self) -> &Dag {
        &self.dag
    }
}

/// DAG definitions by version id.
#[derive(Default)]
pub struct VersionCache {
    versions: Mutex<HashMap<i64, Arc<CachedDag>>>,
}

impl VersionCache {
    /// The definition of `version_id`, loaded on first use.
    pub async fn get(&self, db: &impl GenericClient, version_id: i64) -> Result<Arc<CachedDag>, SchedulerError> {
        if let Some(dag) = self.versions.lock().expect("cache lock").get(&version_id) {
            return Ok(dag.clone());
        }
        let version = dags::version(db, version_id).await?.ok_or(SchedulerError::MissingVersion(version_id))?;
        let dag = Arc::new(CachedDag::new(version.definition));
        self.versions.lock().expect("cache lock").insert(version_id, dag.clone());
        Ok(dag)
    }
}
