//! Finding DAG files and reading them as the scheduler does: the DAG folder
//! from the settings, the files in it ([`gust_shared::dag_folder`]), and one
//! DAG by `dag_id` or path.

use std::path::{Path, PathBuf};

use gust_shared::{
    dag::{parse_dag_file, Dag, DagError},
    dag_folder::dag_files,
    settings::{Settings, SettingsError},
};

use crate::args::DagsFolder;

/// Why DAG files could not be found or read.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// The settings that name the DAG folder are broken.
    #[error("cannot tell where the DAG folder is: {0}; or pass --dags-folder")]
    Settings(#[from] SettingsError),
    /// A path given on the command line does not exist.
    #[error("{}: no such file or folder", .0.display())]
    NotFound(PathBuf),
    /// A folder could not be listed.
    #[error("{}: cannot list the folder: {source}", path.display())]
    ListFolder {
        /// The folder.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A file could not be read.
    #[error("{}: cannot read the file: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The DAG's own file does not parse.
    #[error("{0}\n(run `gust dags validate` for the line and the fix)")]
    Invalid(DagError),
    /// No file in the folder defines the DAG.
    #[error("no DAG `{dag}` in {}: {}", folder.display(), known_dags(known, *broken))]
    NoSuchDag {
        /// The dag_id asked for.
        dag: String,
        /// The folder searched.
        folder: PathBuf,
        /// The dag_ids it has.
        known: Vec<String>,
        /// Files that did not parse (one may be the DAG asked for).
        broken: usize,
    },
}

fn known_dags(known: &[String], broken: usize) -> String {
    let listed = if known.is_empty() { "it defines none".to_string() } else { format!("it has {}", known.join(", ")) };
    match broken {
        0 => listed,
        n => format!("{listed}; {n} file(s) do not parse, run `gust dags validate`"),
    }
}

/// The DAG folder: `--dags-folder` / `GUST__DAGS__FOLDER`, else the settings (`gust.toml`, default `./dags`).
pub fn dags_folder(arg: &DagsFolder) -> Result<PathBuf, FilesError> {
    match &arg.dags_folder {
        Some(folder) => Ok(folder.clone()),
        None => Ok(Settings::load()?.dags.folder),
    }
}

/// The DAG files the paths name: a folder stands for its DAG files (as the scheduler reads them), a file for itself.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, FilesError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let listed = dag_files(path).map_err(|source| FilesError::ListFolder { path: path.clone(), source })?;
            files.extend(listed.into_iter().map(|(file, _, _)| file));
        } else if path.exists() {
            files.push(path.clone());
        } else {
            return Err(FilesError::NotFound(path.clone()));
        }
    }
    Ok(files)
}

/// The text of a file.
pub fn read(path: &Path) -> Result<String, FilesError> {
    std::fs::read_to_string(path).map_err(|source| FilesError::Read { path: path.to_path_buf(), source })
}

/// One parsed DAG and the file it came from.
#[derive(Debug, Clone)]
pub struct LoadedDag {
    /// The file, as named in messages.
    pub file: String,
    /// The file's text.
    pub text: String,
    /// The validated DAG.
    pub dag: Dag,
}

/// The DAG `dag`: a path to a DAG file, or a `dag_id` defined in the folder (the first file, in name order, wins).
pub fn load(dag: &str, folder: &DagsFolder) -> Result<LoadedDag, FilesError> {
    let as_path = Path::new(dag);
    if as_path.is_file() {
        return load_file(as_path);
    }
    let folder = dags_folder(folder)?;
    let mut known = Vec::new();
    let mut broken = 0;
    for path in expand(std::slice::from_ref(&folder))? {
        match load_file(&path) {
            Ok(loaded) if loaded.dag.dag_id == dag => return Ok(loaded),
            Ok(loaded) => known.push(loaded.dag.dag_id),
            Err(_) => broken += 1,
        }
    }
    Err(FilesError::NoSuchDag { dag: dag.to_string(), folder, known, broken })
}

fn load_file(path: &Path) -> Result<LoadedDag, FilesError> {
    let file = path.display().to_string();
    let text = read(path)?;
    let dag = parse_dag_file(&file, &text).map_err(FilesError::Invalid)?;
    Ok(LoadedDag { file, text, dag })
}

/// Reads a date or date-time given on the command line: RFC 3339, or a naive
/// date/time on the wall clock of `timezone` (as DAG files write theirs).
pub fn parse_instant(text: &str, timezone: chrono_tz::Tz) -> Result<chrono::DateTime<chrono::Utc>, String> {
    use chrono::{NaiveDate, NaiveDateTime, TimeZone};
    let text = text.trim();
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&chrono::Utc));
    }
    let naive = ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .or_else(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)))
        .ok_or_else(|| format!("bad date `{text}`; write e.g. 2026-01-01, 2026-01-01T06:00 or 2026-01-01T06:00:00Z"))?;
    timezone
        .from_local_datetime(&naive)
        .earliest()
        .map(|at| at.with_timezone(&chrono::Utc))
        .ok_or_else(|| format!("`{text}` does not exist in {timezone} (the clocks skip it)"))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn a_naive_instant_is_read_on_the_dag_wall_clock_and_an_offset_wins() {
        let amsterdam = chrono_tz::Europe::Amsterdam;
        let utc = |y, m, d, h| chrono::Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap();
        assert_eq!(parse_instant("2026-07-01", amsterdam), Ok(utc(2026, 6, 30, 22)));
        assert_eq!(parse_instant("2026-07-01T06:00:00Z", amsterdam), Ok(utc(2026, 7, 1, 6)));
        assert!(parse_instant("2026-03-29 02:30", amsterdam).unwrap_err().contains("does not exist"));
        assert!(parse_instant("tomorrow", amsterdam).unwrap_err().contains("bad date"));
    }

    #[test]
    fn a_dag_missing_from_the_folder_lists_the_dags_it_has() {
        let folder = DagsFolder { dags_folder: Some(concat!(env!("CARGO_MANIFEST_DIR"), "/../dags").into()) };
        let err = load("nope", &folder).unwrap_err().to_string();
        assert!(err.contains("no DAG `nope`") && err.contains("example_etl"), "{err}");
        assert_eq!(load("example_hello", &folder).unwrap().dag.dag_id, "example_hello");
    }
}
