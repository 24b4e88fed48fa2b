//! `gust standalone` as a real process against the local PostgreSQL and
//! RabbitMQ (an isolated database and queue namespace from the test
//! helpers): it migrates, creates an admin with a generated password shown
//! once (or the configured one), serves the UI and API, runs a DAG, and stops
//! cleanly on SIGTERM.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use serde_json::{json, Value};

use crate::helpers::{binary, Scratch};

/// A running `gust standalone` and the lines it has printed so far.
struct Standalone {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Standalone {
    fn start(env: &[(String, String)]) -> Standalone {
        let mut child = Command::new(binary("gust"))
            .arg("standalone")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gust standalone");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Standalone { child, lines, seen: Vec::new() }
    }

    /// The first printed line containing `text` (waiting up to a minute).
    fn line_with(&mut self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(line) = self.seen.iter().find(|l| l.contains(text)) {
                return line.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => {
                    panic!("gust standalone printed no line with `{text}`; it printed:\n{}", self.seen.join("\n"))
                }
            }
        }
    }

    /// Sends SIGTERM and returns the exit code.
    fn stop(mut self) -> Option<i32> {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).expect("a pid"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("signal gust standalone");
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("wait for gust standalone") {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        panic!("gust standalone did not stop within a minute of SIGTERM");
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_runs_the_whole_engine_in_one_process_with_an_admin_whose_password_it_prints_once() {
    let mut settings = gust_tests::isolated_settings().await;
    settings.auth.admin_username = None;
    settings.auth.admin_password = None;
    let scratch = Scratch::new("standalone");
    scratch.dag("hello.yaml", "dag_id: hello\ntasks:\n  - {id: greet, operator: bash, command: 'echo hi'}\n");
    settings.dags.folder = scratch.dir.join("dags");
    let bind = format!("127.0.0.1:{}", free_port());
    let mut env = gust_tests::processes::settings_env(&settings);
    env.push(("GUST__WEBAPI__BIND".into(), bind.clone()));

    let mut engine = Standalone::start(&env);
    let running = engine.line_with("gust standalone is running");
    assert!(running.contains(&format!("http://{bind}")), "{running}");
    let created = engine.line_with("created user `admin`");
    let password = created.rsplit("password: ").next().unwrap_or_default().trim().to_string();
    assert_eq!(password.len(), 20, "{created}");

    let api = format!("http://{bind}");
    let token = gust_tests::login(&api, "admin", &password).await;
    let http = reqwest::Client::new();
    let auth = format!("Bearer {token}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let run_id = loop {
        let response = http
            .post(format!("{api}/api/v2/dags/hello/dagRuns"))
            .header("authorization", &auth)
            .json(&json!({"conf": {}}))
            .send()
            .await
            .expect("trigger");
        if response.status() == 200 {
            let body: Value = response.json().await.unwrap();
            break body["dag_run_id"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "the DAG was never registered: {}", response.status());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let state = loop {
        let body: Value = http
            .get(format!("{api}/api/v2/dags/hello/dagRuns/{run_id}"))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let state = body["state"].as_str().unwrap_or_default().to_string();
        if state == "success" || state == "failed" {
            break state;
        }
        assert!(Instant::now() < deadline, "the run did not finish: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(state, "success");
    assert_eq!(engine.stop(), Some(0), "SIGTERM stops every component and exits 0");

    let mut again = Standalone::start(&env);
    let existing = again.line_with("user `admin` exists");
    assert!(!existing.contains(&password), "the password is shown only once: {existing}");
    assert_eq!(again.stop(), Some(0));

    let mut configured_env = env.clone();
    configured_env.push(("GUST__AUTH__ADMIN_USERNAME".into(), "ops".into()));
    configured_env.push(("GUST__AUTH__ADMIN_PASSWORD".into(), "configured-pw-1234".into()));
    let mut configured = Standalone::start(&configured_env);
    let line = configured.line_with("admin user:");
    assert_eq!(line, "admin user: ops (GUST__AUTH__ADMIN_USERNAME)");
    configured.line_with("gust standalone is running");
    gust_tests::login(&api, "ops", "configured-pw-1234").await;
    assert_eq!(configured.stop(), Some(0));
    gust_shared::db::drop_database(&settings.database.url).await.ok();
}
