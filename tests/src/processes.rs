//! gust binaries run as child processes, for tests that kill, stop and
//! restart them like an outage would.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
};

use gust_shared::settings::Settings;
use nix::{
    sys::signal::{kill, Signal},
    unistd::Pid,
};
use tokio::process::{Child, Command};

/// Where `cargo build` put the gust binaries.
pub fn binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = target.join("debug").join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first with `cargo build --bins` (scripts/test does)",
        path.display()
    );
    path
}

/// The environment that hands `settings` to a gust binary.
pub fn settings_env(settings: &Settings) -> Vec<(String, String)> {
    let ms = |d: std::time::Duration| format!("{}ms", d.as_millis());
    let auth = [
        ("GUST__AUTH__JWT_SECRET", &settings.auth.jwt_secret),
        ("GUST__AUTH__ADMIN_USERNAME", &settings.auth.admin_username),
        ("GUST__AUTH__ADMIN_PASSWORD", &settings.auth.admin_password),
        ("GUST__SECRETS__KEY", &settings.secrets.key),
    ];
    let auth = auth.into_iter().filter_map(|(key, value)| Some((key.to_string(), value.clone()?)));
    let mut env: Vec<(String, String)> = vec![
        ("GUST__DATABASE__URL".into(), settings.database.url.clone()),
        ("GUST__DATABASE__POOL_SIZE".into(), settings.database.pool_size.to_string()),
        ("GUST__AMQP__URL".into(), settings.amqp.url.clone()),
        ("GUST__AMQP__NAMESPACE".into(), settings.amqp.namespace.clone()),
        ("GUST__AMQP__DELIVERY_LIMIT".into(), settings.amqp.delivery_limit.to_string()),
        ("GUST__DAGS__FOLDER".into(), settings.dags.folder.display().to_string()),
        ("GUST__WEBAPI__BIND".into(), settings.webapi.bind.clone()),
        ("GUST__SCHEDULER__RESCAN_INTERVAL".into(), ms(settings.scheduler.rescan_interval)),
        ("GUST__SCHEDULER__SAFETY_INTERVAL".into(), ms(settings.scheduler.safety_interval)),
        ("GUST__WORKER__CONCURRENCY".into(), settings.worker.concurrency.to_string()),
        ("GUST__WORKER__QUEUES".into(), settings.worker.queues.join(",")),
        ("GUST__WORKER__KILL_GRACE".into(), ms(settings.worker.kill_grace)),
        ("GUST__WORKER__HEARTBEAT_INTERVAL".into(), ms(settings.worker.heartbeat_interval)),
        ("GUST__WORKER__TAKEOVER_AFTER".into(), ms(settings.worker.takeover_after)),
        ("GUST__WORKER__SHUTDOWN_GRACE".into(), ms(settings.worker.shutdown_grace)),
        ("GUST__SCHEDULER__ZOMBIE_THRESHOLD".into(), ms(settings.scheduler.zombie_threshold)),
        ("GUST__SCHEDULER__TASK_QUEUED_TIMEOUT".into(), ms(settings.scheduler.task_queued_timeout)),
        (
            "GUST__SCHEDULER__DAGS_ARE_PAUSED_AT_CREATION".into(),
            settings.scheduler.dags_are_paused_at_creation.to_string(),
        ),
    ];
    let files = [
        ("GUST__AMQP__TLS_CA_FILE", &settings.amqp.tls_ca_file),
        ("GUST__AMQP__TLS_CLIENT_CERT", &settings.amqp.tls_client_cert),
        ("GUST__AMQP__TLS_CLIENT_KEY", &settings.amqp.tls_client_key),
        ("GUST__WEBAPI__TLS_CERT", &settings.webapi.tls_cert),
        ("GUST__WEBAPI__TLS_KEY", &settings.webapi.tls_key),
    ];
    env.extend(
        files.into_iter().filter_map(|(key, path)| Some((key.to_string(), path.as_ref()?.display().to_string()))),
    );
    if !settings.worker.plugin_path.is_empty() {
        let folders: Vec<String> = settings.worker.plugin_path.iter().map(|p| p.display().to_string()).collect();
        env.push(("GUST__WORKER__PLUGIN_PATH".into(), folders.join(":")));
    }
    env.extend(auth);
    env
}

/// A running gust binary whose output goes to a log file.
pub struct Process {
    /// Name for messages, e.g. `worker-1`.
    pub name: String,
    /// Its output.
    pub log: PathBuf,
    child: Child,
}

impl Process {
    /// Starts `binary` with `settings`, named `name` (also the worker name).
    pub fn start(binary_name: &str, name: &str, settings: &Settings, log_dir: &Path) -> Process {
        Process::start_in(&[], binary_name, name, settings, log_dir)
    }

    /// Like [`Process::start`], run by the command `prefix` names (e.g. `ip netns exec <namespace>`)
    /// that executes the binary in place, so the process is the binary's.
    pub fn start_in(prefix: &[String], binary_name: &str, name: &str, settings: &Settings, log_dir: &Path) -> Process {
        let log = log_dir.join(format!("{name}.log"));
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("opening a process log");
        let err = out.try_clone().expect("cloning a log handle");
        let mut command = match prefix.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(binary(binary_name));
                command
            }
            None => Command::new(binary(binary_name)),
        };
        let child = command
            .envs(settings_env(settings))
            .env("GUST__WORKER__NAME", name)
            .env("RUST_LOG", "info,lapin=warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {binary_name}: {e}"));
        Process { name: name.to_string(), log, child }
    }

    /// The OS process id.
    pub fn pid(&self) -> i32 {
        self.child.id().and_then(|id| i32::try_from(id).ok()).expect("a running process has a pid")
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.pid()), signal).unwrap_or_else(|e| panic!("sending {signal} to {}: {e}", self.name));
    }

    /// `kill -9` and wait for it to be gone.
    pub async fn kill9(mut self) {
        self.signal(Signal::SIGKILL);
        let _ = self.child.wait().await;
    }

    /// Waits for the process to exit and returns its exit code.
    pub async fn wait(mut self) -> Option<i32> {
        self.child.wait().await.ok().and_then(|s| s.code())
    }

    /// Whether it has exited.
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Its output so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// True when `pid` is gone or a zombie waiting for its reaper (it runs no more).
pub fn is_dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')).unwrap_or(false),
    }
}
