//! The path parameters routes share, described once for the OpenAPI document.
//! Handlers extract them as tuples; these types only name and document them.
#![allow(dead_code)] // never constructed: they exist for their `IntoParams` impls

use utoipa::IntoParams;

/// `{file_name}`: a DAG file pushed over the API.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct DagFilePath {
    /// The file's name, e.g. `etl.yaml`.
    #[param(pattern = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,194}\.ya?ml$")]
    file_name: String,
}

/// `{dag_id}`: a DAG.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct DagPath {
    /// The DAG's id; `~` means every DAG where a route lists across DAGs.
    dag_id: String,
}

/// `{dag_id}/dagRuns/{dag_run_id}`: one run of a DAG.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct RunPath {
    /// The DAG's id; `~` means every DAG where a route lists across DAGs.
    dag_id: String,
    /// The run's id; `~` means every run where a route lists across runs.
    dag_run_id: String,
}

/// `…/taskInstances/{task_id}`: one task of a run.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct TaskInstancePath {
    /// The DAG's id.
    dag_id: String,
    /// The run's id.
    dag_run_id: String,
    /// The task's id.
    task_id: String,
}

/// `…/taskInstances/{task_id}/{map_index}`: one instance of a (mapped) task of a run.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct MappedTaskInstancePath {
    /// The DAG's id.
    dag_id: String,
    /// The run's id.
    dag_run_id: String,
    /// The task's id.
    task_id: String,
    /// Which instance of a mapped task (0, 1, …); -1 for an unmapped task.
    map_index: i32,
}

/// `…/taskGroupInstances/{group_id}`: the tasks of a run whose ids start with `{group_id}.`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct TaskGroupPath {
    /// The DAG's id.
    dag_id: String,
    /// The run's id.
    dag_run_id: String,
    /// The group's id: the part of its tasks' ids before the last `.`.
    group_id: String,
}
