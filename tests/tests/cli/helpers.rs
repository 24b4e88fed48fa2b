//! Running `gust` and the scratch folders the tests write DAG files into.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

/// The workspace root, where `dags/` and `schema/` are.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The binary `name` (`gust` or a daemon), after bringing the build up to date once per test
/// process with the command scripts/test builds with, so that under scripts/test it is a no-op
/// (the same targets, features and environment) and a lone `cargo test --test cli` never runs
/// a stale `gust`.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "--workspace", "--all-targets"])
            .current_dir(workspace())
            .status()
            .expect("run cargo to build the gust binaries");
        assert!(status.success(), "`cargo build --workspace --all-targets` failed");
    });
    gust_tests::processes::binary(name)
}

/// What one run of `gust` gave.
#[derive(Debug)]
pub struct Run {
    /// Exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Asserts the exit code, showing both streams when it differs.
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(self.code, Some(code), "exit code; stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        assert!(!self.stderr.contains("panicked"), "gust panicked:\n{}", self.stderr);
        self
    }

    /// Standard output as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// Runs `gust args…` in `dir`, with no DAG folder setting from the environment.
pub fn gust_in(dir: &Path, args: &[&str]) -> Run {
    gust_with_env(dir, args, &[])
}

/// Runs `gust args…` in `dir` with these environment variables (and no DAG folder setting unless given).
pub fn gust_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = Command::new(binary("gust"))
        .args(args)
        .current_dir(dir)
        .env_remove("GUST__DAGS__FOLDER")
        .env_remove("GUST_CONFIG")
        .envs(env.iter().copied())
        .output()
        .expect("run gust");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `gust args…` in the workspace root (so `dags/` is the example folder).
pub fn gust(args: &[&str]) -> Run {
    gust_in(&workspace(), args)
}

/// A scratch folder of DAG files, removed when dropped.
pub struct Scratch {
    /// The folder.
    pub dir: PathBuf,
}

impl Scratch {
    /// An empty folder unique to this test.
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("gust-cli-{name}-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        std::fs::create_dir_all(dir.join("dags")).expect("create the scratch folder");
        Self { dir }
    }

    /// Writes `dags/<name>` with `text`.
    pub fn dag(&self, name: &str, text: &str) -> &Self {
        std::fs::write(self.dir.join("dags").join(name), text).expect("write a DAG file");
        self
    }

    /// Writes `<name>` next to the DAG folder.
    pub fn file(&self, name: &str, text: &str) -> &Self {
        std::fs::write(self.dir.join(name), text).expect("write a file");
        self
    }

    /// Runs gust in the scratch folder.
    pub fn gust(&self, args: &[&str]) -> Run {
        gust_in(&self.dir, args)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}
