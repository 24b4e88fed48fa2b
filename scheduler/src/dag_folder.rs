//! Keeping the `dags` table in step with the DAG sources: the DAG folder,
//! then the files pushed over the API (`dag_files`, named `dagFiles:<name>`).
//! New and changed files are parsed and stored as new versions, broken files
//! become import errors, DAGs whose file is gone are marked inactive. When a
//! pushed file defines a `dag_id` that a folder file defines, the folder
//! wins and the pushed file is an import error.

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
    time::SystemTime,
};

use deadpool_postgres::Pool;
use gust_shared::{
    dag::{parse_dag_file, LimitError, MAX_DAG_FILE_BYTES},
    dag_folder::{dag_files, duplicate_dag_id},
    db::{self, dags, import_errors},
};
use sha2::{Digest, Sha256};

use crate::error::SchedulerError;

/// What the last parse of one file gave.
#[derive(Clone)]
enum Parsed {
    Dag { dag_id: String },
    Broken { problem: String },
}

/// What tells that a file changed since it was parsed.
#[derive(Clone, PartialEq)]
enum Fingerprint {
    /// A folder file: its modification time and length.
    Folder(SystemTime, u64),
    /// A pushed file: the SHA-256 of its text.
    Pushed(String),
}

/// One DAG file to look at, from either source.
struct Candidate {
    /// The name import errors and `fileloc` show.
    name: String,
    fingerprint: Fingerprint,
    /// The folder file to read, or the pushed file's text.
    text: Source,
}

enum Source {
    Path(PathBuf),
    Text(String),
}

/// The name a pushed file has in import errors and as its DAG's `fileloc`.
pub fn pushed_file_name(file_name: &str) -> String {
    format!("dagFiles:{file_name}")
}

/// Remembers each file's fingerprint and parse result, so only changed files are re-parsed.
#[derive(Default)]
pub struct DagFolder {
    seen: HashMap<String, (Fingerprint, Parsed)>,
}

/// Counts from one scan, for the log.
#[derive(Debug, Default, PartialEq)]
pub struct ScanReport {
    /// Files that define a DAG.
    pub dags: usize,
    /// Files that failed to import.
    pub broken: usize,
    /// DAGs stored with a new version in this scan.
    pub new_versions: usize,
    /// DAGs marked inactive because their file is gone.
    pub deactivated: Vec<String>,
    /// Seconds each file read and parsed in this scan took (unchanged files are not parsed again).
    pub parse_seconds: Vec<f64>,
}

impl DagFolder {
    /// Forgets what the last parse of file `name` gave, so the next scan parses it again.
    pub fn forget(&mut self, name: &str) {
        self.seen.remove(name);
    }

    /// Scans `folder` and brings the database in step with it; a DAG stored for the
    /// first time starts paused per its file, else per `paused_at_creation`.
    pub async fn scan(
        &mut self,
        pool: &Pool,
        folder: &Path,
        paused_at_creation: bool,
    ) -> Result<ScanReport, SchedulerError> {
        let (files, folder_readable) = match dag_files(folder) {
            Ok(files) => (files, true),
            Err(e) => {
                // A missing or unreadable folder (an unmounted volume, say) must not deactivate its DAGs.
                tracing::error!(folder = %folder.display(), error = %e, "cannot read the DAG folder; create it or set GUST__DAGS__FOLDER");
                (Vec::new(), false)
            }
        };
        let mut report = ScanReport::default();
        let mut client = pool.get().await?;
        let pushed = db::dag_files::all(&client).await?;
        let candidates = files
            .into_iter()
            .map(|(path, modified, len)| Candidate {
                name: path.display().to_string(),
                fingerprint: Fingerprint::Folder(modified, len),
                text: Source::Path(path),
            })
            .chain(pushed.into_iter().map(|file| Candidate {
                name: pushed_file_name(&file.file_name),
                fingerprint: Fingerprint::Pushed(file.sha256),
                text: Source::Text(file.source),
            }));
        let mut owner_of: HashMap<String, String> = HashMap::new();
        let mut failing: Vec<String> = Vec::new();
        let mut present: Vec<String> = Vec::new();
        // A DAG deleted through the API since it was parsed is parsed and stored again, as Airflow does.
        let stored: HashSet<String> = dags::ids(&client).await?.into_iter().collect();

        for candidate in candidates {
            let name = candidate.name;
            let cached = self
                .seen
                .get(&name)
                .filter(|(fingerprint, _)| *fingerprint == candidate.fingerprint)
                .map(|(_, p)| p.clone())
                .filter(|p| !matches!(p, Parsed::Dag { dag_id } if !stored.contains(dag_id)));
            let parsed = match cached {
                Some(parsed) => parsed,
                None => {
                    let started = std::time::Instant::now();
                    let text = match candidate.text {
                        Source::Path(path) => read_folder_file(&path),
                        Source::Text(text) => Ok(text),
                    };
                    let read = text.map(|text| (parse_dag_file(&name, &text), text));
                    report.parse_seconds.push(started.elapsed().as_secs_f64());
                    let parsed = match read {
                        Err(e) => Parsed::Broken { problem: format!("{name}: {e}") },
                        Ok((dag, text)) => match dag {
                            Err(e) => Parsed::Broken { problem: e.to_string() },
                            Ok(dag) => {
                                let hash = hex::encode(Sha256::digest(text.as_bytes()));
                                if let Some(other) = owner_of.get(&dag.dag_id) {
                                    Parsed::Broken { problem: duplicate_dag_id(&name, &dag.dag_id, Path::new(other)) }
                                } else {
                                    let tx = client.transaction().await?;
                                    let new_version =
                                        dags::upsert(&tx, &dag, &name, &hash, &text, paused_at_creation).await?;
                                    tx.commit().await?;
                                    if new_version {
                                        report.new_versions += 1;
                                        tracing::info!(dag_id = %dag.dag_id, file = %name, "stored new DAG version");
                                    }
                                    Parsed::Dag { dag_id: dag.dag_id }
                                }
                            }
                        },
                    };
                    self.seen.insert(name.clone(), (candidate.fingerprint, parsed.clone()));
                    parsed
                }
            };
            match parsed {
                Parsed::Dag { dag_id } => {
                    if let Some(other) = owner_of.get(&dag_id) {
                        let problem = duplicate_dag_id(&name, &dag_id, Path::new(other));
                        import_errors::record(&client, &name, &problem).await?;
                        failing.push(name);
                        report.broken += 1;
                        continue;
                    }
                    owner_of.insert(dag_id.clone(), name);
                    present.push(dag_id);
                    report.dags += 1;
                }
                Parsed::Broken { problem } => {
                    tracing::warn!(file = %name, %problem, "DAG file failed to import");
                    import_errors::record(&client, &name, &problem).await?;
                    failing.push(name);
                    report.broken += 1;
                }
            }
        }
        // Sets, not list scans: a rescan of 10,000 files stays linear.
        let owned: HashSet<&String> = owner_of.values().collect();
        let failed: HashSet<&String> = failing.iter().collect();
        self.seen.retain(|name, _| owned.contains(name) || failed.contains(name));

        // A DAG whose file is broken keeps running its last good version; so do the
        // folder's DAGs while the folder cannot be read.
        let mut kept: HashSet<String> = present.iter().cloned().collect();
        for (dag_id, fileloc) in dags::active_filelocs(&client).await? {
            let unread = !folder_readable && !fileloc.starts_with(&pushed_file_name(""));
            if (failed.contains(&fileloc) || unread) && kept.insert(dag_id.clone()) {
                present.push(dag_id);
            }
        }
        import_errors::keep_only(&client, &failing).await?;
        report.deactivated = dags::deactivate_missing(&client, &present).await?;
        for dag_id in &report.deactivated {
            tracing::info!(%dag_id, "DAG file gone; DAG marked inactive");
        }
        Ok(report)
    }
}

/// The text of a folder file, or why it cannot be had: a file over the DAG file size limit is
/// refused before it is read, so a huge file in the folder costs no memory.
fn read_folder_file(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let cannot = |e: std::io::Error| format!("cannot read file: {e}");
    let file = std::fs::File::open(path).map_err(cannot)?;
    let len = file.metadata().map_err(cannot)?.len();
    if len > MAX_DAG_FILE_BYTES as u64 {
        return Err(LimitError::FileTooLarge { bytes: usize::try_from(len).unwrap_or(usize::MAX) }.to_string());
    }
    let mut text = String::new();
    // A file that grows after the check is still read only to one byte over the limit, which the parser refuses.
    file.take(MAX_DAG_FILE_BYTES as u64 + 1).read_to_string(&mut text).map_err(cannot)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use gust_shared::db::{self, runs::Deletion};

    use super::*;

    /// A scratch database and DAG folder, both removed when dropped (even when the test fails).
    struct Scratch {
        url: String,
        folder: PathBuf,
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            std::fs::remove_dir_all(&self.folder).ok();
            let url = self.url.clone();
            let dropped = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map(|rt| rt.block_on(db::drop_database(&url)))
            })
            .join();
            if !matches!(dropped, Ok(Ok(Ok(())))) {
                eprintln!("could not drop test database {}", self.url);
            }
        }
    }

    #[test]
    fn a_folder_file_over_the_size_limit_is_refused_without_being_read() {
        let folder = std::env::temp_dir().join(format!("gust-dag-size-{}", std::process::id()));
        std::fs::create_dir_all(&folder).unwrap();
        let huge = folder.join("huge.yaml");
        // Sparse: a file of 64 GiB that takes no disk, and would take 64 GiB of memory if read.
        std::fs::File::create(&huge).unwrap().set_len(64 << 30).unwrap();
        let small = folder.join("small.yaml");
        std::fs::write(&small, "dag_id: x\n").unwrap();
        let (huge, small) = (read_folder_file(&huge), read_folder_file(&small));
        std::fs::remove_dir_all(&folder).ok();
        assert_eq!(
            huge.unwrap_err(),
            "the file is 68719476736 bytes, over the limit of 4194304 bytes (4 MiB) for a DAG file; split it into several DAG files"
        );
        assert_eq!(small.unwrap(), "dag_id: x\n");
    }

    #[tokio::test]
    async fn a_dag_deleted_through_the_api_is_registered_again_by_the_next_scan() {
        let server =
            std::env::var("GUST_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
        let unique = format!("{}_{nanos}", std::process::id());
        let scratch = Scratch {
            url: format!("{server}/gust_dag_folder_test_{unique}"),
            folder: std::env::temp_dir().join(format!("gust-dag-folder-{unique}")),
        };
        if let Err(e) = db::migrate(&scratch.url).await {
            panic!("this test needs PostgreSQL at {server} (user postgres, trust auth), or GUST_TEST_POSTGRES: {e}");
        }
        let pool = db::connect(&scratch.url, 2).await.expect("connect to the test database");
        std::fs::create_dir_all(&scratch.folder).unwrap();
        let yaml = "dag_id: etl\nstart_date: 2026-01-01\ntasks:\n  - id: a\n    operator: noop\n";
        std::fs::write(scratch.folder.join("etl.yaml"), yaml).unwrap();

        let mut scanner = DagFolder::default();
        assert_eq!(scanner.scan(&pool, &scratch.folder, false).await.unwrap().new_versions, 1);
        let mut client = pool.get().await.unwrap();
        let tx = client.transaction().await.unwrap();
        assert_eq!(dags::delete(&tx, "etl").await.unwrap(), Deletion::Deleted);
        tx.commit().await.unwrap();
        let again = scanner.scan(&pool, &scratch.folder, false).await.unwrap();
        assert_eq!(again.new_versions, 1, "the unchanged file is stored again");
        assert!(dags::get(&client, "etl").await.unwrap().is_some_and(|dag| dag.is_active));
        let cached = scanner.scan(&pool, &scratch.folder, false).await.unwrap();
        assert_eq!(cached.new_versions, 0, "and then served from the cache");
        drop(client);
        pool.close();
    }
}
