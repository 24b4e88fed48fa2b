//! Reads of the run and task-instance pages: a task's instances in a run (the
//! map indexes of a mapped task), a version's number, and a try's whole log
//! as a stream of chunks for the raw download.

use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};
use uuid::Uuid;

use crate::{
    db::{logs, DbError, GenericClient},
    state::TaskState,
};

/// One instance of a task in a run, as the list of a mapped task's instances shows it.
#[derive(Debug, Clone)]
pub struct TaskInstanceBrief {
    /// -1 unless mapped.
    pub map_index: i32,
    /// Current state.
    pub state: TaskState,
    /// Current (or last) try; 0 before the first.
    pub try_number: i32,
    /// When the current try started.
    pub start_date: Option<DateTime<Utc>>,
    /// When the current try ended.
    pub end_date: Option<DateTime<Utc>>,
}

/// The instances of task `task_id` in the run `run_pk`, by map index.
pub async fn instances_of_task(
    db: &impl GenericClient,
    run_pk: i64,
    task_id: &str,
) -> Result<Vec<TaskInstanceBrief>, DbError> {
    let rows = db
        .query(
            r#"
SELECT map_index, state, try_number, start_date, end_date FROM task_instances
WHERE run_pk = $1 AND task_id = $2 ORDER BY map_index"#,
            &[&run_pk, &task_id],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let state: String = r.get(1);
            Ok(TaskInstanceBrief {
                map_index: r.get(0),
                state: TaskState::parse(&state).ok_or_else(|| DbError::Corrupt(format!("task state `{state}`")))?,
                try_number: r.get(2),
                start_date: r.get(3),
                end_date: r.get(4),
            })
        })
        .collect()
}

/// The number (1, 2, …) of the DAG version `version_id`, without reading its definition.
pub async fn version_number(db: &impl GenericClient, version_id: i64) -> Result<Option<i32>, DbError> {
    Ok(db.query_opt("SELECT version_number FROM dag_versions WHERE id = $1", &[&version_id]).await?.map(|r| r.get(0)))
}

/// Lines of a log read per statement by [`log_text`].
const LOG_CHUNK_LINES: i64 = 5_000;

/// The text of one try's log (each line ending in `\n`) as a stream of
/// chunks, read [`LOG_CHUNK_LINES`] at a time on `db`, so a huge log is never
/// held whole in memory.
pub fn log_text(
    db: deadpool_postgres::Object,
    ti_id: Uuid,
    try_number: i32,
) -> impl Stream<Item = Result<String, DbError>> + Send + 'static {
    futures_util::stream::unfold(Some((db, 0_i64)), move |next| async move {
        let (db, after) = next?;
        match logs::read(&db, ti_id, try_number, after, LOG_CHUNK_LINES).await {
            Err(error) => Some((Err(error), None)),
            Ok(lines) if lines.is_empty() => None,
            Ok(lines) => {
                let last = lines.last().map_or(after, |line| line.id);
                let full = i64::try_from(lines.len()).unwrap_or(i64::MAX) >= LOG_CHUNK_LINES;
                let mut text = String::with_capacity(lines.iter().map(|line| line.line.len() + 1).sum());
                for line in &lines {
                    text.push_str(&line.line);
                    text.push('\n');
                }
                Some((Ok(text), full.then_some((db, last))))
            }
        }
    })
    // HTTP servers may poll a finished body once more; an unfused unfold panics when they do.
    .fuse()
}
