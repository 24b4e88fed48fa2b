//! Moving one run forward: starting it (creating its task instances), then
//! applying readiness decisions and ending it when every task is finished.

use std::collections::HashSet;

use chrono::Utc;
use deadpool_postgres::Pool;
use gust_shared::{
    dag::{Dag, ExpandSource},
    db::{
        backfills, logs,
        runs::{self, DagRunRow},
        task_instances::run_progress::{self, InstanceState},
        xcom, GenericClient,
    },
    state::{RunState, TaskTransition},
};
use uuid::Uuid;

use crate::{
    dispatch::run_params,
    error::SchedulerError,
    metrics::{Metrics, RunTypeLabel, StateLabel},
    planner_statistics,
    readiness::{self, BranchChoices},
    versions::VersionCache,
};

/// Schedules one run under its row lock; another scheduler holding the lock
/// means the run is being handled, so it is skipped. `finished` names the
/// tasks that just finished, so only their downstream tasks are looked at;
/// `None` looks at the whole run. Returns `Held` when a queued run may not
/// start yet (its DAG is paused or at `max_active_runs`; a backfill run: its
/// backfill is paused, at its own `max_active_runs`, or has an earlier run to start).
pub async fn schedule_run(
    pool: &Pool,
    versions: &VersionCache,
    run_pk: i64,
    finished: Option<&HashSet<String>>,
    metrics: &Metrics,
) -> Result<Progress, SchedulerError> {
    if let Some(finished) = finished {
        if nothing_to_decide(pool, versions, run_pk, finished).await? {
            return Ok(Progress::Moved);
        }
    }
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let Some(run) = runs::lock_live(&tx, run_pk).await? else { return Ok(Progress::Moved) };
    let dag = versions.get(&tx, run.dag_version_id).await?;

    let (mut started, mut created) = (false, 0);
    if run.state == RunState::Queued {
        runs::lock_run_start(&tx, &run.dag_id).await?;
        if runs::dag_is_paused(&tx, &run.dag_id).await? {
            return Ok(Progress::Held);
        }
        let may_start = match run.backfill_id {
            None => runs::count_running(&tx, &run.dag_id).await? < i64::from(dag.max_active_runs),
            Some(backfill_id) => backfills::may_start_run(&tx, backfill_id, run.id, run.logical_date).await?,
        };
        if !may_start {
            return Ok(Progress::Held);
        }
        created = run_progress::create_for_run(&tx, run.id, &run.dag_id, &run.run_id, &dag.tasks).await?;
        started = runs::start(&tx, run.id).await?;
        tracing::info!(dag_id = %run.dag_id, run_id = %run.run_id, tasks = dag.tasks.len(), "run started");
    }

    // Tasks skipped or upstream_failed here finish without a NOTIFY, so an
    // incremental pass goes on with their downstreams in this transaction.
    let mut frontier: Option<HashSet<String>> = finished.filter(|_| run.state == RunState::Running).cloned();
    let mut incremental = frontier.is_some();
    let mut outcome = None;
    loop {
        let instances = match &frontier {
            None => run_progress::states_for_run(&tx, run.id).await?,
            Some(finished) => {
                // Only the direct downstreams of what finished can change; load them and their upstreams.
                let mut needed: HashSet<&str> = HashSet::new();
                for done in finished {
                    for down in dag.downstream.get(done).into_iter().flatten() {
                        needed.insert(down);
                        if let Some(task) = dag.task(down) {
                            needed.extend(task.upstream.iter().map(String::as_str));
                        }
                    }
                }
                let needed: Vec<&str> = needed.into_iter().collect();
                if needed.is_empty() {
                    Vec::new()
                } else {
                    run_progress::states_of_tasks(&tx, run.id, &needed).await?
                }
            }
        };
        let choices = branch_choices(&tx, run.id, &dag, &instances).await?;
        let decisions = readiness::decide(&dag, &instances, &choices);
        run_progress::apply(&tx, &decisions.schedule, TaskTransition::Schedule).await?;
        run_progress::apply(&tx, &decisions.upstream_failed, TaskTransition::UpstreamFail).await?;
        run_progress::apply(&tx, &decisions.skip, TaskTransition::Skip).await?;
        let mut cascaded = HashSet::new();
        for (placeholder, task_id) in &decisions.expand {
            if expand(&tx, &run, &dag, *placeholder, task_id).await? {
                cascaded.insert(task_id.clone());
            }
        }
        for InstanceState { id, task_id, .. } in &instances {
            if decisions.upstream_failed.contains(id) {
                tracing::info!(dag_id = %run.dag_id, run_id = %run.run_id, %task_id, "task upstream_failed");
            } else if decisions.skip.contains(id) {
                tracing::info!(dag_id = %run.dag_id, run_id = %run.run_id, %task_id, "task skipped");
            } else {
                continue;
            }
            cascaded.insert(task_id.clone());
        }
        if !incremental && decisions.expand.is_empty() {
            outcome = decisions.run_outcome;
            break;
        }
        if cascaded.is_empty() {
            break;
        }
        // Expanding decided tasks the full pass could not see; go on from them as a finished task would.
        incremental = true;
        frontier = Some(cascaded);
    }
    if incremental {
        outcome = run_progress::run_outcome(&tx, run.id, &dag.leaves).await?;
    }
    let mut ended = None;
    if let Some(outcome) = outcome {
        if runs::finish(&tx, run.id, outcome).await? {
            tracing::info!(dag_id = %run.dag_id, run_id = %run.run_id, state = %outcome, "run finished");
            ended = Some(outcome);
        }
    }
    tx.commit().await?;
    if created > 0 {
        planner_statistics::refresh_if_outgrown(pool, created);
    }
    count_run(metrics, &run, started, ended);
    Ok(Progress::Moved)
}

/// Counts a run that this (committed) pass `started` and/or `ended`, with its delay and duration.
fn count_run(metrics: &Metrics, run: &DagRunRow, started: bool, ended: Option<RunState>) {
    let now = Utc::now();
    let seconds = |since: chrono::DateTime<Utc>| (now - since).num_milliseconds().max(0) as f64 / 1000.0;
    if started {
        metrics.runs_created.get_or_create(&RunTypeLabel { run_type: run.run_type.clone() }).inc();
        metrics.run_schedule_delay.observe(seconds(run.run_after));
    }
    if let Some(state) = ended {
        metrics.runs_finished.get_or_create(&StateLabel { state: state.as_str().to_string() }).inc();
        metrics.run_duration.observe(run.start_date.map_or(0.0, seconds));
    }
}

/// Whether a pass for the tasks that just `finished` would change nothing:
/// none of them has a downstream task and the run still has unfinished ones.
/// Decided with plain reads, because the run's row lock costs a WAL record
/// and a flushed commit, which a large fan-out would otherwise pay on every
/// finish; when in doubt the locked pass decides.
async fn nothing_to_decide(
    pool: &Pool,
    versions: &VersionCache,
    run_pk: i64,
    finished: &HashSet<String>,
) -> Result<bool, SchedulerError> {
    let client = pool.get().await?;
    let Some((running, version)) = runs::running_version(&client, run_pk).await? else { return Ok(true) };
    if !running {
        return Ok(false);
    }
    let dag = versions.get(&client, version).await?;
    if finished.iter().any(|task| dag.downstream.contains_key(task)) {
        return Ok(false);
    }
    Ok(run_progress::any_unfinished(&client, run_pk).await?)
}

/// Expands a mapped task whose trigger rule is met into one instance per
/// element of its list; an empty list skips it and an unreadable one fails
/// it (with the reason in its log). Returns true when the task finished here.
async fn expand(
    db: &impl GenericClient,
    run: &DagRunRow,
    dag: &Dag,
    placeholder: Uuid,
    task_id: &str,
) -> Result<bool, SchedulerError> {
    let Some(source) = dag.task(task_id).and_then(|t| t.expand.as_ref()) else { return Ok(false) };
    let items = match run_params(dag, &run.conf) {
        Err(reason) => Err(reason),
        Ok((_, params)) => {
            let xcoms = match source {
                ExpandSource::Xcom(_) => xcom::for_run(db, run.id).await?,
                _ => Default::default(),
            };
            source.items(&params, &xcoms).map_err(|e| e.to_string())
        }
    };
    let (dag_id, run_id) = (&run.dag_id, &run.run_id);
    match items {
        Ok(items) if items.is_empty() => {
            tracing::info!(%dag_id, %run_id, %task_id, "mapped task has nothing to map over; skipped");
            run_progress::apply(db, &[placeholder], TaskTransition::Skip).await?;
            Ok(true)
        }
        Ok(items) => {
            if run_progress::expand_mapped(db, placeholder, &items).await? {
                tracing::info!(%dag_id, %run_id, %task_id, instances = items.len(), "mapped task expanded");
            }
            Ok(false)
        }
        Err(reason) => {
            tracing::warn!(%dag_id, %run_id, %task_id, %reason, "mapped task cannot be expanded; failed");
            if run_progress::fail_unexpandable(db, placeholder, &reason).await? {
                let line = format!("gust: {reason}; the task was not run");
                logs::append(db, placeholder, 1, &[(Utc::now(), "gust", line.as_str())]).await?;
            }
            Ok(true)
        }
    }
}

/// What the succeeded branch tasks among `instances` chose, from their
/// `return_value` XComs: a task id or a list of ids. A branch that pushed
/// nothing usable chose nothing, so all its direct downstream tasks are skipped.
async fn branch_choices(
    db: &impl GenericClient,
    run_pk: i64,
    dag: &Dag,
    instances: &[InstanceState],
) -> Result<BranchChoices, SchedulerError> {
    let branches = readiness::branches_to_load(dag, instances);
    if branches.is_empty() {
        return Ok(BranchChoices::new());
    }
    let mut choices: BranchChoices = branches.iter().map(|b| (b.to_string(), Vec::new())).collect();
    for (task_id, value) in xcom::return_values(db, run_pk, &branches).await? {
        let chosen = match value {
            serde_json::Value::String(id) => vec![id],
            serde_json::Value::Array(ids) => ids.into_iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        };
        choices.insert(task_id, chosen);
    }
    Ok(choices)
}

/// Whether [`schedule_run`] could move the run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Started, advanced, or nothing to do.
    Moved,
    /// A queued run that may not start yet.
    Held,
}
