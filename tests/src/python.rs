//! Python tools the compatibility tests drive gust with (the official Airflow
//! client, airflowctl, schemathesis), each pinned and installed with pip into
//! its own virtualenv under `target/python/`, created on first use and reused
//! after; and Airflow's own OpenAPI document, taken from its pinned wheel.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use nix::fcntl::{Flock, FlockArg};

/// The official Airflow REST client the compatibility test uses.
pub const AIRFLOW_CLIENT: &str = "apache-airflow-client==3.3.2";
/// The OpenAPI fuzzer the API test uses.
pub const SCHEMATHESIS: &str = "schemathesis==4.32.5";
/// The Airflow release gust's API follows; its wheel carries Airflow's OpenAPI document.
pub const APACHE_AIRFLOW_CORE: &str = "apache-airflow-core==3.3.2";
/// Airflow's command line client over the REST API: 0.1.5 is the release current with Airflow 3.3.2.
pub const AIRFLOW_CTL: &str = "apache-airflow-ctl==0.1.5";
/// A keyring kept in a plain file, so airflowctl can store its token where no desktop keyring runs.
pub const KEYRINGS_ALT: &str = "keyrings.alt==5.0.2";
/// Where Airflow's OpenAPI document lies inside the `APACHE_AIRFLOW_CORE` wheel.
const AIRFLOW_DOCUMENT_IN_WHEEL: &str = "airflow/api_fastapi/core_api/openapi/v2-rest-api-generated.yaml";

/// The scripts the tests run, in `tests/python/`.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python").join(name)
}

/// A virtualenv named `name` holding `package` (pinned `name==version`), as
/// [`venv_with`] makes it.
pub fn venv(name: &str, package: &str) -> PathBuf {
    venv_with(name, &[package])
}

/// A virtualenv named `name` holding every one of `packages` (each pinned
/// `name==version`), created with `python3 -m venv` and pip when it is missing
/// or holds another version of one. Fails the test with what to install when
/// Python cannot do it.
///
/// Tests in other binaries (other processes) may want the same virtualenv at
/// the same time: the one that comes first makes it under an exclusive lock on
/// `target/python/<name>.lock`, the others wait for it and then reuse it.
pub fn venv_with(name: &str, packages: &[&str]) -> PathBuf {
    let root = python_root();
    let _lock = lock(&root, name);
    let dir = root.join(name);
    let python = dir.join("bin/python");
    let pinned: Vec<(&str, &str)> =
        packages.iter().map(|p| p.split_once("==").expect("packages are pinned as name==version")).collect();
    let current = |python: &Path| pinned.iter().all(|(d, v)| installed(python, d).as_deref() == Some(*v));
    if python.exists() && current(&python) {
        return dir;
    }
    if !python.exists() {
        let created = Command::new("python3").arg("-m").arg("venv").arg(&dir).output();
        check(created, "python3 -m venv", "install Python 3 with venv support (Debian: apt-get install python3-venv)");
    }
    if !packages.is_empty() {
        let pip = Command::new(dir.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(packages)
            .output();
        check(pip, &format!("pip install {}", packages.join(" ")), "check that PyPI is reachable");
    }
    for (distribution, version) in &pinned {
        assert_eq!(installed(&python, distribution).as_deref(), Some(*version), "{distribution} after pip install");
    }
    dir
}

/// Airflow's own OpenAPI document of its REST API (`v2-rest-api-generated.yaml`
/// of the `APACHE_AIRFLOW_CORE` wheel): the wheel is fetched with
/// `pip download --no-deps` into `target/python/` on first use and the document
/// extracted next to it, under the same lock scheme as [`venv_with`].
pub fn airflow_openapi_document() -> PathBuf {
    let root = python_root();
    let name = APACHE_AIRFLOW_CORE.replace("==", "-");
    let _lock = lock(&root, &name);
    let document = root.join(format!("{name}-v2-rest-api-generated.yaml"));
    if document.exists() {
        return document;
    }
    let pip = venv_with("pip", &[]);
    let wheels = root.join("wheels");
    let (distribution, version) = APACHE_AIRFLOW_CORE.split_once("==").expect("pinned as name==version");
    let wheel_prefix = format!("{}-{version}-", distribution.replace('-', "_"));
    let download = Command::new(pip.join("bin/pip"))
        .args(["download", "--quiet", "--disable-pip-version-check", "--no-deps", "--only-binary=:all:", "-d"])
        .arg(&wheels)
        .arg(APACHE_AIRFLOW_CORE)
        .output();
    check(download, &format!("pip download {APACHE_AIRFLOW_CORE}"), "check that PyPI is reachable");
    let wheel = std::fs::read_dir(&wheels)
        .unwrap_or_else(|e| panic!("reading {}: {e}", wheels.display()))
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .find(|path| {
            let file = path.file_name().unwrap_or_default().to_string_lossy();
            file.starts_with(&wheel_prefix) && file.ends_with(".whl")
        })
        .unwrap_or_else(|| panic!("pip download put no {APACHE_AIRFLOW_CORE} wheel into {}", wheels.display()));
    let partial = document.with_extension("yaml.partial");
    let extract = "import sys, zipfile; open(sys.argv[3], 'wb').write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))";
    let extracted = Command::new(pip.join("bin/python"))
        .args(["-c", extract])
        .arg(&wheel)
        .arg(AIRFLOW_DOCUMENT_IN_WHEEL)
        .arg(&partial)
        .output();
    check(extracted, &format!("extracting {AIRFLOW_DOCUMENT_IN_WHEEL}"), "the wheel may be damaged: delete it");
    std::fs::rename(&partial, &document).unwrap_or_else(|e| panic!("renaming {}: {e}", partial.display()));
    document
}

fn python_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/python");
    std::fs::create_dir_all(&root).unwrap_or_else(|e| panic!("creating {}: {e}", root.display()));
    root
}

/// An exclusive lock on `target/python/<name>.lock`, released when dropped (or by the OS if the process dies).
fn lock(root: &Path, name: &str) -> Flock<std::fs::File> {
    let lock_path = root.join(format!("{name}.lock"));
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", lock_path.display()));
    Flock::lock(lock_file, FlockArg::LockExclusive)
        .unwrap_or_else(|(_, e)| panic!("locking {}: {e}", lock_path.display()))
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

/// One schemathesis run against a test stack: its settings file (in
/// `tests/python/`), the OpenAPI document (a path or URL), the checks, and
/// where the JSON report goes.
pub struct SchemathesisRun<'a> {
    /// The settings file, e.g. `schemathesis.toml`.
    pub config: &'a str,
    /// The OpenAPI document to test against.
    pub schema: &'a str,
    /// The stack's API address.
    pub api: &'a str,
    /// A bearer token for every request.
    pub token: &'a str,
    /// Comma-separated schemathesis checks.
    pub checks: &'a str,
    /// Examples per operation unless `GUST_FUZZ_EXAMPLES` says otherwise.
    pub default_examples: u32,
    /// Where the JSON report is written.
    pub report: &'a Path,
}

impl SchemathesisRun<'_> {
    /// The command line: every phase, the seed `GUST_FUZZ_SEED` (default 7),
    /// and one worker: with two, hypothesis describes strategies by parsing
    /// source with `ast` from two threads at once, and CPython 3.11 then fails
    /// now and then with "SystemError: AST constructor recursion depth
    /// mismatch" (python/cpython#106905), an error of the tool, not of gust.
    pub fn args(&self) -> Vec<String> {
        let examples = std::env::var("GUST_FUZZ_EXAMPLES").unwrap_or_else(|_| self.default_examples.to_string());
        let seed = std::env::var("GUST_FUZZ_SEED").unwrap_or_else(|_| "7".into());
        let config = script(self.config);
        let report = self.report.display().to_string();
        let header = format!("Authorization: Bearer {}", self.token);
        [
            "--config-file",
            &config.display().to_string(),
            "run",
            self.schema,
            "--url",
            self.api,
            "--checks",
            self.checks,
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            &examples,
            "--workers",
            "1",
            "--header",
            &header,
            "--seed",
            &seed,
            "--no-color",
            "--report",
            "json",
            "--report-json-path",
            &report,
        ]
        .into_iter()
        .map(String::from)
        .collect()
    }
}
