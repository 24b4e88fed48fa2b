//! Publishing scheduled task instances to RabbitMQ.
//!
//! The `scheduled → queued` update and the publish share one transaction
//! that commits only after the broker confirmed every message. A worker's
//! claim (`queued → running`) waits on the row lock until that commit, so it
//! never sees a half-dispatched try; if the commit fails the claim finds the
//! task still `scheduled`, drops the message, and the next pass publishes again.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use chrono::Utc;
use deadpool_postgres::Pool;
use gust_shared::{
    broker::Publish,
    dag::{resolve_params, Dag, OperatorSpec, TaskSpec},
    db::{
        logs,
        task_instances::dispatch::{self as ti_dispatch, Dispatchable},
        variables, xcom, GenericClient,
    },
    message::{TaskMessage, SCHEMA_VERSION},
    secrets::Secrets,
    template::{self, Connections, TemplateContext, Variables, Xcoms},
};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{
    args_schema::ArgsSchemas,
    error::SchedulerError,
    metrics::{Metrics, QueueLabel},
    versions::VersionCache,
};

/// Dispatches every scheduled task instance, `batch` per transaction; returns how many.
pub async fn dispatch_scheduled(
    pool: &Pool,
    broker: &dyn Publish,
    versions: &VersionCache,
    batch: usize,
    secrets: Option<&Secrets>,
    metrics: &Metrics,
) -> Result<usize, SchedulerError> {
    let limit = i64::try_from(batch).unwrap_or(i64::MAX);
    let mut total = 0;
    if !ti_dispatch::any_scheduled(&pool.get().await?).await? {
        return Ok(0);
    }
    loop {
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        let taken = ti_dispatch::take_for_dispatch(&tx, limit).await?;
        if taken.is_empty() {
            return Ok(total);
        }
        let mut messages = Vec::with_capacity(taken.len());
        let mut rendered = Rendered::default();
        let mut xcoms_by_run = HashMap::new();
        let mut schemas = ArgsSchemas::default();
        let mut loaded = Loaded { variables: None, connections: None, secrets };
        for ti in &taken {
            let dag = versions.get(&tx, ti.dag_version_id).await?;
            let Some(task) = dag.task(&ti.task_id) else {
                return Err(SchedulerError::MissingVersion(ti.dag_version_id));
            };
            let operator = match render(&tx, ti, &dag, task, &mut xcoms_by_run, &mut loaded).await? {
                Ok(None) => task.operator.clone(),
                Ok(Some(operator)) => {
                    rendered.ids.push(ti.id);
                    rendered.fields.push(serde_json::to_value(&operator).unwrap_or_default());
                    operator
                }
                Err(error) => {
                    fail_unrenderable(&tx, ti, &error).await?;
                    continue;
                }
            };
            if let Err(error) = schemas.check(&tx, &operator, &task.queue).await? {
                fail_unrenderable(&tx, ti, &error).await?;
                continue;
            }
            let mut message = with_run_params(build_message(ti, task, operator), &dag, ti);
            message.queued_at = Some(Utc::now());
            messages.push(message);
        }
        ti_dispatch::set_rendered_fields(&tx, &rendered.ids, &rendered.fields).await?;
        broker.publish(&messages).await?;
        tx.commit().await?;
        for m in &messages {
            tracing::info!(dag_id = %m.dag_id, run_id = %m.run_id, task_id = %m.task_id, try_number = m.try_number, queue = %m.queue, "task queued");
        }
        count_by_queue(metrics, &messages);
        total += taken.len();
        if taken.len() < batch {
            return Ok(total);
        }
    }
}

/// Adds published `messages` to `gust_tasks_dispatched_total`, one increment per queue.
fn count_by_queue(metrics: &Metrics, messages: &[TaskMessage]) {
    let mut by_queue: BTreeMap<&str, u64> = BTreeMap::new();
    for m in messages {
        *by_queue.entry(m.queue.as_str()).or_default() += 1;
    }
    for (queue, count) in by_queue {
        metrics.tasks_dispatched.get_or_create(&QueueLabel { queue: queue.to_string() }).inc_by(count);
    }
}

/// Rendered operator arguments of the templated tasks of one dispatch batch, for the API.
#[derive(Default)]
struct Rendered {
    ids: Vec<Uuid>,
    fields: Vec<serde_json::Value>,
}

/// The task's operator with its templates rendered, `None` when it has no
/// templates, or why rendering failed (the run's params no longer fit the
/// DAG, an undefined variable, a syntax error).
/// `xcoms_by_run` keeps each run's XComs, and `loaded` the Variables and Connections, loaded
/// once per dispatch batch, and only for templates that can read them.
async fn render(
    db: &impl GenericClient,
    ti: &Dispatchable,
    dag: &Dag,
    task: &TaskSpec,
    xcoms_by_run: &mut HashMap<i64, Xcoms>,
    loaded: &mut Loaded<'_>,
) -> Result<Result<Option<OperatorSpec>, String>, SchedulerError> {
    let loaded_variables = &mut loaded.variables;
    if !template::operator_is_templated(&task.operator) {
        return Ok(Ok(None));
    }
    let (conf, params) = match run_params(dag, &ti.conf) {
        Ok(resolved) => resolved,
        Err(reason) => return Ok(Err(reason)),
    };
    let xcoms = if template::operator_mentions(&task.operator, "xcom_pull") {
        if let std::collections::hash_map::Entry::Vacant(entry) = xcoms_by_run.entry(ti.run_pk) {
            entry.insert(xcom::for_run(db, ti.run_pk).await?);
        }
        xcoms_by_run[&ti.run_pk].clone()
    } else {
        Default::default()
    };
    let variables = if template::operator_reads_variables(&task.operator) {
        if loaded_variables.is_none() {
            *loaded_variables = Some(Arc::new(variables::all_values(db).await?));
        }
        loaded_variables.clone().unwrap_or_default()
    } else {
        Arc::default()
    };
    let connections = if template::operator_reads_connections(&task.operator) {
        if loaded.connections.is_none() {
            loaded.connections = Some(Arc::new(gust_shared::connections::for_templates(db, loaded.secrets).await?));
        }
        loaded.connections.clone().unwrap_or_default()
    } else {
        Arc::default()
    };
    let (data_interval_start, data_interval_end) = ti.data_interval.unzip();
    let ctx = TemplateContext {
        dag_id: ti.dag_id.clone(),
        task_id: ti.task_id.clone(),
        run_id: ti.run_id.clone(),
        map_index: ti.map_index,
        map_item: ti.map_item.clone(),
        try_number: ti.next_try,
        logical_date: ti.logical_date,
        data_interval_start,
        data_interval_end,
        run_after: ti.run_after,
        conf,
        params,
        xcoms,
        variables,
        connections,
    };
    Ok(template::render_operator(&task.operator, &ctx).map(Some).map_err(|e| format!("template error in {e}")))
}

/// What templates of one dispatch batch read, loaded on first need: Variables, and
/// Connections decrypted with `secrets` (`GUST__SECRETS__KEY`; environment `GUST_CONN_*` of the scheduler).
struct Loaded<'a> {
    variables: Option<Arc<Variables>>,
    connections: Option<Arc<Connections>>,
    secrets: Option<&'a Secrets>,
}

/// A run's `conf` as a map, and its params resolved against it.
pub(crate) type RunParams = (Map<String, Value>, Map<String, Value>);

/// A run's `conf` as a map and its params resolved against it, or why they
/// no longer fit the DAG (its version changed the params after the trigger).
pub(crate) fn run_params(dag: &Dag, conf: &serde_json::Value) -> Result<RunParams, String> {
    let conf = conf.as_object().cloned().unwrap_or_default();
    let params = resolve_params(&dag.params, &conf).map_err(|e| format!("the run's params do not fit the DAG: {e}"))?;
    Ok((conf, params))
}

/// Fails a try whose templates could not be rendered, with the reason in its log.
async fn fail_unrenderable(db: &impl GenericClient, ti: &Dispatchable, reason: &str) -> Result<(), SchedulerError> {
    tracing::warn!(dag_id = %ti.dag_id, run_id = %ti.run_id, task_id = %ti.task_id, %reason, "task failed: its templates cannot be rendered");
    if ti_dispatch::fail_unrenderable(db, ti.id, ti.next_try, reason).await? {
        let line = format!("gust: {reason}; the task was not run");
        logs::append(db, ti.id, ti.next_try, &[(Utc::now(), "gust", line.as_str())]).await?;
    }
    Ok(())
}

/// A custom operator's message with the run's params and conf, which its
/// executable reads from stdin; other messages unchanged.
fn with_run_params(mut message: TaskMessage, dag: &Dag, ti: &Dispatchable) -> TaskMessage {
    if matches!(message.operator, OperatorSpec::Custom { .. }) {
        let (conf, params) = run_params(dag, &ti.conf)
            .unwrap_or_else(|_| (ti.conf.as_object().cloned().unwrap_or_default(), Default::default()));
        (message.conf, message.params) = (Some(conf), Some(params));
    }
    message
}

/// The self-contained message for try `ti.next_try` of a task instance, running `operator`.
pub fn build_message(ti: &Dispatchable, task: &TaskSpec, operator: OperatorSpec) -> TaskMessage {
    let mut message = TaskMessage {
        version: SCHEMA_VERSION,
        ti_id: ti.id,
        dag_id: ti.dag_id.clone(),
        run_id: ti.run_id.clone(),
        task_id: ti.task_id.clone(),
        map_index: ti.map_index,
        map_item: ti.map_item.clone(),
        try_number: ti.next_try,
        logical_date: ti.logical_date,
        queue: task.queue.clone(),
        operator,
        execution_timeout_ms: task.execution_timeout_ms,
        retry: task.retry_policy(),
        env: BTreeMap::new(),
        params: None,
        conf: None,
        first_poke_at: None,
        queued_at: None,
        outlets: task.outlets.clone(),
    };
    message.env = message.context_env();
    message
}
