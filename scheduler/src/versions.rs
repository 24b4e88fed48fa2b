//! An in-memory cache of DAG versions. Versions never change once written,
//! so a cached one is never stale.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use gust_shared::{
    dag::{Dag, TaskSpec},
    db::{dags, GenericClient},
};

use crate::error::SchedulerError;

/// A DAG definition with its tasks indexed by id and its edges indexed both ways.
pub struct CachedDag {
    /// The definition.
    pub dag: Dag,
    /// Position of each task in `dag.tasks`: a lookup per task instance stays O(1)
    /// however many tasks the DAG has (a scan made a 100,000-task run quadratic).
    by_id: HashMap<String, usize>,
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
        let by_id = dag.tasks.iter().enumerate().map(|(i, t)| (t.task_id.clone(), i)).collect();
        CachedDag { dag, by_id, downstream, leaves }
    }

    /// The task named `task_id`, if the DAG has it (what [`Dag::task`] answers, by the index).
    pub fn task(&self, task_id: &str) -> Option<&TaskSpec> {
        self.by_id.get(task_id).map(|&i| &self.dag.tasks[i])
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_finds_every_task_the_definition_has_and_nothing_else() {
        let yaml = "dag_id: d\ntasks:\n  - {id: a, operator: noop}\n  - {id: b, operator: noop, depends_on: [a]}\n  - {id: c, operator: noop, depends_on: [a]}\n";
        let dag = gust_shared::dag::parse_dag_file("d.yaml", yaml).unwrap();
        let cached = CachedDag::new(dag.clone());
        for id in ["a", "b", "c"] {
            assert_eq!(cached.task(id), dag.task(id), "{id}");
        }
        assert!(cached.task("z").is_none());
        assert_eq!(cached.downstream["a"], ["b", "c"]);
        assert_eq!(cached.leaves, ["b", "c"]);
    }
}
