//! Python tools the compatibility tests drive gust with (the official Airflow
//! client, schemathesis), each pinned and installed with pip into its own
//! virtualenv under `target/python/`, created on first use and reused after.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use nix::fcntl::{Flock, FlockArg};

/// The official Airflow REST client the compatibility test uses.
pub const AIRFLOW_CLIENT: &str = "apache-airflow-client==3.3.2";
/// The OpenAPI fuzzer the API test uses.
pub const SCHEMATHESIS: &str = "schemathesis==4.32.5";

/// The scripts the tests run, in `tests/python/`.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python").join(name)
}

/// A virtualenv named `name` holding `package` (pinned `name==version`),
/// created with `python3 -m venv` and pip when it is missing or holds another
/// version. Fails the test with what to install when Python cannot do it.
///
/// Tests in other binaries (other processes) may want the same virtualenv at
/// the same time: the one that comes first makes it under an exclusive lock on
/// `target/python/<name>.lock`, the others wait for it and then reuse it.
pub fn venv(name: &str, package: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/python");
    std::fs::create_dir_all(&root).unwrap_or_else(|e| panic!("creating {}: {e}", root.display()));
    let lock_path = root.join(format!("{name}.lock"));
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", lock_path.display()));
    // Released when dropped at the end of this function (or by the OS if the process dies).
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .unwrap_or_else(|(_, e)| panic!("locking {}: {e}", lock_path.display()));
    let dir = root.join(name);
    let python = dir.join("bin/python");
    let (distribution, version) = package.split_once("==").expect("packages are pinned as name==version");
    if python.exists() && installed(&python, distribution).as_deref() == Some(version) {
        return dir;
    }
    if !python.exists() {
        let created = Command::new("python3").arg("-m").arg("venv").arg(&dir).output();
        check(created, "python3 -m venv", "install Python 3 with venv support (Debian: apt-get install python3-venv)");
    }
    let pip =
        Command::new(dir.join("bin/pip")).args(["install", "--quiet", "--disable-pip-version-check", package]).output();
    check(pip, &format!("pip install {package}"), "check that PyPI is reachable");
    assert_eq!(installed(&python, distribution).as_deref(), Some(version), "{package} after pip install");
    dir
}

fn installed(python: &Path, distribution: &str) -> Option<String> {
    let probe = format!("import importlib.metadata as m; print(m.version('{distribution}'))");
    let output = Command::new(python).args(["-c", &probe]).output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

fn check(result: std::io::Result<Output>, what: &str, advice: &str) {
    match result {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!(
            "{what} failed ({}); {advice}\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(error) => panic!("{what} could not start: {error}; {advice}"),
    }
}
