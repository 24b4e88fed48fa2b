//! Signals between gust processes through PostgreSQL: the NOTIFY channels
//! with their payload formats, and the advisory locks, in one key scheme.
//!
//! Channels (a NOTIFY is delivered when its transaction commits, so a
//! listener never sees work that was rolled back):
//!
//! | channel | payload | raised by | woken scheduler does |
//! |---|---|---|---|
//! | `gust_task_finished` | `run_pk:task,task,…` (those tasks finished) or `run_pk` (look at the whole run) | worker commits, scheduler decisions, API clear and mark | a scheduling pass over the run |
//! | `gust_run_queued` | `dag_id` | run creation, run state set by hand, run finished, backfill unpaused | starts queued runs |
//! | `gust_pools_changed` | pool name | pool created or changed | dispatches (slots may have opened) |
//! | `gust_dag_files_changed` | file name | a DAG file pushed or deleted over the API | rescans its DAG sources |
//! | `gust_dag_file_reparse` | the DAG's `fileloc` | `PUT /api/v2/parseDagFile/{file_token}` | parses that file again, then rescans |
//! | `gust_assets_queued` | `dag_id` | an asset event queued for a DAG scheduled on its asset (`assets::record_event`) | creates the DAG's asset-triggered run if its condition holds |
//!
//! Two statements build the `gust_task_finished` payload in SQL, because they
//! notify for many rows at once (`worker_tries::claim_and_finish_many`, one
//! NOTIFY per run per [`TASKS_PER_NOTIFY`] tasks, and `try_end::end_try`); both
//! write [`Signal::TasksFinished`]'s format, and the compare-and-set tests
//! parse what they send with [`Signal::parse`].
//!
//! Advisory locks: every gust lock is the two-key form `(class, object)`:
//! `class` is one of [`AdvisoryLock`]'s fixed numbers and `object` is
//! `hashtext(name)` of what is locked (a DAG id), or 0.

pub use super::assets::ASSETS_QUEUED_CHANNEL;
use super::{DbError, GenericClient};

/// Channel of task instances that finished (or of a run to look at again).
pub const TASK_FINISHED_CHANNEL: &str = "gust_task_finished";
/// Channel of runs that were queued or freed a `max_active_runs` slot; payload = dag_id.
pub const RUN_QUEUED_CHANNEL: &str = "gust_run_queued";
/// Channel of pools that were created or changed; payload = pool name.
pub const POOLS_CHANGED_CHANNEL: &str = "gust_pools_changed";

/// Channel of DAG files pushed or deleted over the API; payload = file name.
pub const DAG_FILES_CHANGED_CHANNEL: &str = "gust_dag_files_changed";

/// Channel of DAG files to parse again even if unchanged; payload = the file's `fileloc`.
pub const DAG_FILE_REPARSE_CHANNEL: &str = "gust_dag_file_reparse";

/// Task ids named by one `gust_task_finished` payload: at 250 characters each
/// (the longest task id) it stays under PostgreSQL's 8,000-byte payload limit.
pub const TASKS_PER_NOTIFY: i64 = 25;

/// The statement that subscribes a connection to every channel a scheduler follows.
pub const LISTEN_ALL: &str = "LISTEN gust_task_finished; LISTEN gust_run_queued; LISTEN gust_pools_changed; \
     LISTEN gust_dag_files_changed; LISTEN gust_dag_file_reparse; LISTEN gust_assets_queued;";

/// One notification, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// Tasks of a run finished: which ones, or `None` when the whole run must be looked at.
    TasksFinished {
        /// The run's primary key.
        run_pk: i64,
        /// The task ids that finished (task ids never hold a comma).
        tasks: Option<Vec<String>>,
    },
    /// Queued runs of this DAG may start.
    RunQueued {
        /// The DAG.
        dag_id: String,
    },
    /// A pool was created or changed.
    PoolsChanged {
        /// The pool.
        name: String,
    },
    /// A DAG file was pushed or deleted over the API.
    DagFilesChanged {
        /// The file.
        file_name: String,
    },
    /// A DAG file must be parsed again, changed or not.
    ReparseFile {
        /// The file, as the DAG's `fileloc` names it.
        fileloc: String,
    },
    /// Asset events were queued for a DAG scheduled on their assets.
    AssetsQueued {
        /// The DAG.
        dag_id: String,
    },
}

impl Signal {
    /// Reads a notification of one of gust's channels; `None` for another
    /// channel or a payload gust does not write.
    pub fn parse(channel: &str, payload: &str) -> Option<Signal> {
        match channel {
            TASK_FINISHED_CHANNEL => {
                let (run_pk, tasks) = match payload.split_once(':') {
                    Some((run, tasks)) => (run, Some(tasks.split(',').map(str::to_string).collect())),
                    None => (payload, None),
                };
                Some(Signal::TasksFinished { run_pk: run_pk.parse().ok()?, tasks })
            }
            RUN_QUEUED_CHANNEL => Some(Signal::RunQueued { dag_id: payload.to_string() }),
            POOLS_CHANGED_CHANNEL => Some(Signal::PoolsChanged { name: payload.to_string() }),
            DAG_FILES_CHANGED_CHANNEL => Some(Signal::DagFilesChanged { file_name: payload.to_string() }),
            DAG_FILE_REPARSE_CHANNEL => Some(Signal::ReparseFile { fileloc: payload.to_string() }),
            ASSETS_QUEUED_CHANNEL => Some(Signal::AssetsQueued { dag_id: payload.to_string() }),
            _ => None,
        }
    }

    /// The channel and payload this signal is sent as.
    pub fn encode(&self) -> (&'static str, String) {
        match self {
            Signal::TasksFinished { run_pk, tasks: None } => (TASK_FINISHED_CHANNEL, run_pk.to_string()),
            Signal::TasksFinished { run_pk, tasks: Some(tasks) } => {
                (TASK_FINISHED_CHANNEL, format!("{run_pk}:{}", tasks.join(",")))
            }
            Signal::RunQueued { dag_id } => (RUN_QUEUED_CHANNEL, dag_id.clone()),
            Signal::PoolsChanged { name } => (POOLS_CHANGED_CHANNEL, name.clone()),
            Signal::DagFilesChanged { file_name } => (DAG_FILES_CHANGED_CHANNEL, file_name.clone()),
            Signal::ReparseFile { fileloc } => (DAG_FILE_REPARSE_CHANNEL, fileloc.clone()),
            Signal::AssetsQueued { dag_id } => (ASSETS_QUEUED_CHANNEL, dag_id.clone()),
        }
    }

    /// Sends the signal; it is delivered when the caller's transaction commits.
    pub async fn send(&self, db: &impl GenericClient) -> Result<(), DbError> {
        let (channel, payload) = self.encode();
        db.execute("SELECT pg_notify($1, $2)", &[&channel, &payload]).await?;
        Ok(())
    }

    /// Asks the schedulers for a pass over the whole run (cleared or marked by hand).
    pub async fn run_changed(db: &impl GenericClient, run_pk: i64) -> Result<(), DbError> {
        Signal::TasksFinished { run_pk, tasks: None }.send(db).await
    }

    /// Tells the schedulers that queued runs of `dag_id` may start.
    pub async fn run_queued(db: &impl GenericClient, dag_id: &str) -> Result<(), DbError> {
        Signal::RunQueued { dag_id: dag_id.to_string() }.send(db).await
    }
}

/// Every advisory lock gust takes; see the module doc for the key scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdvisoryLock<'a> {
    /// Serialises migrations of one database (session lock, by `gust migrate` and `--migrate`).
    Migration,
    /// Serialises dispatch across schedulers, so pool and `max_active_tasks` counts cannot be raced.
    Dispatch,
    /// Serialises run starts of a DAG, so `max_active_runs` holds across schedulers.
    RunStart {
        /// The DAG.
        dag_id: &'a str,
    },
    /// Serialises the creation of a DAG's scheduled runs, so each interval gets one run.
    RunCreation {
        /// The DAG.
        dag_id: &'a str,
    },
    /// Lets one scheduler at a time run the periodic retention clean.
    Retention,
}

impl AdvisoryLock<'_> {
    /// The lock's class: the first key, fixed per kind of lock.
    pub const fn class(self) -> i32 {
        match self {
            AdvisoryLock::Migration => 0x6775_0001,
            AdvisoryLock::Dispatch => 0x6775_0002,
            AdvisoryLock::RunStart { .. } => 0x6775_0003,
            AdvisoryLock::RunCreation { .. } => 0x6775_0004,
            AdvisoryLock::Retention => 0x6775_0005,
        }
    }

    /// The name hashed into the second key ("" for locks on nothing in particular).
    fn name(self) -> String {
        match self {
            AdvisoryLock::Migration | AdvisoryLock::Dispatch | AdvisoryLock::Retention => String::new(),
            AdvisoryLock::RunStart { dag_id } | AdvisoryLock::RunCreation { dag_id } => dag_id.to_string(),
        }
    }

    /// Takes the lock until the caller's transaction ends, waiting for its holder.
    pub async fn lock_for_transaction(self, db: &impl GenericClient) -> Result<(), DbError> {
        let statement = db.prepare_cached("SELECT pg_advisory_xact_lock($1, hashtext($2))").await?;
        db.execute(&statement, &[&self.class(), &self.name()]).await?;
        Ok(())
    }

    /// Takes the lock until the caller's transaction ends if nobody holds it; false when somebody does.
    pub async fn try_lock_for_transaction(self, db: &impl GenericClient) -> Result<bool, DbError> {
        let row =
            db.query_one("SELECT pg_try_advisory_xact_lock($1, hashtext($2))", &[&self.class(), &self.name()]).await?;
        Ok(row.get(0))
    }

    /// Takes the lock for the session, waiting for its holder; release it with [`Self::unlock_session`].
    pub async fn lock_session(self, db: &tokio_postgres::Client) -> Result<(), DbError> {
        db.execute("SELECT pg_advisory_lock($1, hashtext($2))", &[&self.class(), &self.name()]).await?;
        Ok(())
    }

    /// Releases a lock taken with [`Self::lock_session`].
    pub async fn unlock_session(self, db: &tokio_postgres::Client) -> Result<(), DbError> {
        db.execute("SELECT pg_advisory_unlock($1, hashtext($2))", &[&self.class(), &self.name()]).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_finished_payload_names_one_or_many_tasks_or_the_whole_run() {
        let parse = |payload| Signal::parse(TASK_FINISHED_CHANNEL, payload);
        let finished = |run_pk, tasks: &[&str]| Signal::TasksFinished {
            run_pk,
            tasks: Some(tasks.iter().map(|t| t.to_string()).collect()),
        };
        assert_eq!(parse("42:extract"), Some(finished(42, &["extract"])));
        assert_eq!(parse("7:a.b,c-d,e_f"), Some(finished(7, &["a.b", "c-d", "e_f"])));
        assert_eq!(parse("9"), Some(Signal::TasksFinished { run_pk: 9, tasks: None }));
        assert_eq!(parse("x:y"), None);
        assert_eq!(parse(""), None);
        assert_eq!(Signal::parse("other", "9"), None);
    }

    #[test]
    fn every_signal_reads_back_as_it_was_sent() {
        let signals = [
            Signal::TasksFinished { run_pk: 3, tasks: None },
            Signal::TasksFinished { run_pk: 3, tasks: Some(vec!["a".into(), "b".into()]) },
            Signal::RunQueued { dag_id: "etl".into() },
            Signal::PoolsChanged { name: "default_pool".into() },
            Signal::DagFilesChanged { file_name: "etl.yaml".into() },
            Signal::ReparseFile { fileloc: "/dags/etl.yaml".into() },
            Signal::AssetsQueued { dag_id: "reports".into() },
        ];
        for signal in signals {
            let (channel, payload) = signal.encode();
            assert_eq!(Signal::parse(channel, &payload), Some(signal));
            assert!(LISTEN_ALL.contains(&format!("LISTEN {channel};")), "{channel} is not listened to");
        }
    }

    #[test]
    fn every_lock_has_its_own_class() {
        let locks = [
            AdvisoryLock::Migration,
            AdvisoryLock::Dispatch,
            AdvisoryLock::RunStart { dag_id: "a" },
            AdvisoryLock::RunCreation { dag_id: "a" },
            AdvisoryLock::Retention,
        ];
        let mut classes: Vec<i32> = locks.iter().map(|l| l.class()).collect();
        classes.sort_unstable();
        classes.dedup();
        assert_eq!(classes.len(), locks.len());
    }
}
