//! Which files of a DAG folder are DAG files, and the rule that a `dag_id`
//! belongs to the first file (in name order) that defines it. The scheduler's
//! folder scan and `gust dags validate` both follow these, so they agree.

use std::{
    path::{Path, PathBuf},
    time::SystemTime,
};

/// `*.yaml` and `*.yml` files directly in `folder`, sorted by path, with mtime and size.
pub fn dag_files(folder: &Path) -> std::io::Result<Vec<(PathBuf, SystemTime, u64)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder)? {
        let path = entry?.path();
        if !is_dag_file_name(&path) {
            continue;
        }
        let Ok(meta) = std::fs::metadata(&path) else { continue };
        if meta.is_file() {
            files.push((path, meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), meta.len()));
        }
    }
    files.sort();
    Ok(files)
}

/// Whether the path names a DAG file (`.yaml` or `.yml`).
pub fn is_dag_file_name(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "yaml" || e == "yml")
}

/// The import error of a file whose `dag_id` an earlier file already defines.
pub fn duplicate_dag_id(file: &str, dag_id: &str, first: &Path) -> String {
    format!("{file}: dag_id `{dag_id}` is already defined in {}", first.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_yaml_files_directly_in_the_folder_count_in_name_order() {
        let folder = std::env::temp_dir().join(format!("gust-dag-files-{}", std::process::id()));
        std::fs::create_dir_all(folder.join("nested")).unwrap();
        for name in ["b.yml", "a.yaml", "notes.txt", "nested/c.yaml"] {
            std::fs::write(folder.join(name), "x").unwrap();
        }
        let names: Vec<String> = dag_files(&folder)
            .unwrap()
            .into_iter()
            .map(|(path, _, _)| path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        std::fs::remove_dir_all(&folder).ok();
        assert_eq!(names, ["a.yaml", "b.yml"]);
    }
}
