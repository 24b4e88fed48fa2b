//! Headless Chromium for the `ui` binary's browser tests: starts
//! `chromedriver` as a child process (in its own process group, killed with
//! Chromium on drop) and drives it over WebDriver with fantoccini. Every
//! wait polls with the [`PATIENCE`] bound and fails naming what it waited
//! for, the page's URL and its text.

use std::{
    fs::File,
    os::unix::process::CommandExt,
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use fantoccini::{elements::Element, wd::Capabilities, Client, ClientBuilder, Locator};
use nix::{sys::signal, unistd::Pid};
use serde_json::{json, Value};

use crate::{Deadline, PATIENCE};

/// The Chromium binary Debian's `chromium` package installs.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The WebDriver server Debian's `chromium-driver` package installs.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Width and height of the browser window, and so of every screenshot.
pub const WINDOW: (u32, u32) = (1400, 900);

/// How often a wait looks at the page again.
const POLL: Duration = Duration::from_millis(100);

/// A headless Chromium session pointed at one gust server.
pub struct Browser {
    client: Client,
    driver: Child,
    base: String,
}

impl Browser {
    /// Starts chromedriver and a Chromium session for the server at `base`
    /// (e.g. `http://127.0.0.1:41234`). Fails, saying what to install, when
    /// Chromium or chromedriver is missing.
    pub async fn start(base: &str) -> Browser {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(binary).exists(),
                "the browser tests need {binary}: install Chromium and its WebDriver with \
                 `apt-get install chromium chromium-driver` (.ci/run does this when they are missing)"
            );
        }
        let (driver, port) = start_driver().await;
        let mut capabilities = Capabilities::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-dev-shm-usage",
                    "--hide-scrollbars",
                    format!("--window-size={},{}", WINDOW.0, WINDOW.1),
                ],
            }),
        );
        let mut builder = ClientBuilder::rustls().expect("loading TLS roots for the WebDriver client");
        let client = builder
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| panic!("starting Chromium through chromedriver: {e}"));
        let browser = Browser { client, driver, base: base.trim_end_matches('/').to_string() };
        browser.fit_viewport().await;
        browser
    }

    /// Grows the window by what its frame takes, so the page (and every
    /// screenshot) is [`WINDOW`] in size.
    async fn fit_viewport(&self) {
        let script = "return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight]";
        let frame = self.script(script, vec![]).await;
        let extra = |i: usize| u32::try_from(frame[i].as_u64().unwrap_or(0)).unwrap_or(0);
        self.client
            .set_window_size(WINDOW.0 + extra(0), WINDOW.1 + extra(1))
            .await
            .unwrap_or_else(|e| panic!("resizing the window: {e}"));
        let inner = self.script("return [window.innerWidth, window.innerHeight]", vec![]).await;
        assert_eq!(inner, json!([WINDOW.0, WINDOW.1]), "the page is {WINDOW:?} in size");
    }

    /// The fantoccini client, for what these helpers do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The absolute URL of a path on the server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Opens a path of the server (e.g. `/dags`) and waits until it has loaded.
    pub async fn goto(&self, path: &str) {
        self.goto_url(&self.url(path)).await;
    }

    /// Opens an absolute URL (another site, say) and waits until it has loaded.
    pub async fn goto_url(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("opening {url}: {e}"));
    }

    /// The path (with query) of the page the browser shows.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("reading the current URL");
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// Waits until an element matches the CSS selector `css`; returns the first.
    pub async fn wait_for(&self, css: &str) -> Element {
        self.wait_until(&format!("an element matching `{css}`"), || async {
            self.client.find(Locator::Css(css)).await.ok()
        })
        .await
    }

    /// Waits until the text of the first element matching `css` contains `needle`; returns the text.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> String {
        self.wait_until(&format!("`{css}` to contain {needle:?}"), || async {
            let text = self.client.find(Locator::Css(css)).await.ok()?.text().await.ok()?;
            text.contains(needle).then_some(text)
        })
        .await
    }

    /// Polls `check` until it yields a value; fails after [`PATIENCE`] naming
    /// `what`, the page's URL and its text.
    pub async fn wait_until<T, F, Fut>(&self, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Some(value) = check().await {
                return value;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("gave up waiting for {what} after {PATIENCE:?}; {}", self.describe().await);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The page's URL and (the start of) its visible text, for failure messages.
    pub async fn describe(&self) -> String {
        let url = self.client.current_url().await.map_or_else(|e| format!("(no URL: {e})"), |u| u.to_string());
        let text = self.visible_text().await;
        let mut cut = text.len().min(3000);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("the browser shows {url} with the text:\n{}", &text[..cut])
    }

    /// The visible text of the whole page.
    pub async fn visible_text(&self) -> String {
        self.script("return document.body ? document.body.innerText : ''", vec![])
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// True when some element matches `css` now (no waiting: check absence after the page has loaded).
    pub async fn has(&self, css: &str) -> bool {
        !self.client.find_all(Locator::Css(css)).await.unwrap_or_else(|e| panic!("finding `{css}`: {e}")).is_empty()
    }

    /// Waits for an element matching `css` and clicks it.
    pub async fn click(&self, css: &str) {
        let element = self.wait_for(css).await;
        if let Err(e) = element.click().await {
            panic!("clicking `{css}`: {e}; {}", self.describe().await);
        }
    }

    /// Waits for the input matching `css`, empties it and types `value`.
    pub async fn fill(&self, css: &str, value: &str) {
        let element = self.wait_for(css).await;
        element.clear().await.unwrap_or_else(|e| panic!("emptying `{css}`: {e}"));
        element.send_keys(value).await.unwrap_or_else(|e| panic!("typing into `{css}`: {e}"));
    }

    /// Waits for an element matching `css` and returns its text.
    pub async fn text(&self, css: &str) -> String {
        self.wait_for(css).await.text().await.unwrap_or_else(|e| panic!("reading the text of `{css}`: {e}"))
    }

    /// Waits for an element matching `css` and returns its attribute `name`.
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.wait_for(css).await.attr(name).await.unwrap_or_else(|e| panic!("reading `{name}` of `{css}`: {e}"))
    }

    /// Runs `script` in the page (its `arguments` are `args`; a returned promise is awaited).
    pub async fn script(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.unwrap_or_else(|e| panic!("running a script in the page: {e}"))
    }

    /// The HTTP status of the document the browser shows.
    pub async fn status(&self) -> u64 {
        let status = self.script("return performance.getEntriesByType('navigation')[0].responseStatus", vec![]).await;
        status.as_u64().unwrap_or_else(|| panic!("the page has no navigation status: {status}"))
    }

    /// Saves a PNG of the window to `path`, creating its folder.
    pub async fn screenshot(&self, path: &Path) {
        let png = self.client.screenshot().await.unwrap_or_else(|e| panic!("taking a screenshot: {e}"));
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).expect("creating the screenshot folder");
        }
        std::fs::write(path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }

    /// Ends the session (Chromium quits), then stops chromedriver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        stop_driver(&mut self.driver);
    }
}

/// Kills chromedriver's process group (Chromium and its helpers are in it) and reaps chromedriver.
fn stop_driver(driver: &mut Child) {
    if let Ok(pid) = i32::try_from(driver.id()) {
        let _ = signal::killpg(Pid::from_raw(pid), signal::Signal::SIGKILL);
    }
    let _ = driver.wait();
}

/// Starts chromedriver on a free port in a process group of its own and
/// waits until it says it is ready; returns it and its port.
async fn start_driver() -> (Child, u16) {
    let log_path = std::env::temp_dir().join(format!("gust-chromedriver-{}.log", uuid::Uuid::new_v4().simple()));
    let deadline = Deadline::new("chromedriver to answer");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().expect("building an HTTP client");
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("finding a free port for chromedriver")
            .port();
        let log = File::create(&log_path).expect("creating chromedriver's log file");
        let mut driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("sharing chromedriver's log file"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {CHROMEDRIVER}: {e}"));
        loop {
            deadline.check();
            if let Ok(Some(status)) = driver.try_wait() {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                // Another process may have taken the port between our probe and chromedriver's bind.
                if log.contains("bind") || log.contains("in use") {
                    break;
                }
                panic!("chromedriver exited with {status} before it was ready; its output:\n{log}");
            }
            let status = http.get(format!("http://127.0.0.1:{port}/status")).send().await;
            if let Ok(response) = status {
                let body: Value = response.json().await.unwrap_or(Value::Null);
                if body["value"]["ready"] == true {
                    let _ = std::fs::remove_file(&log_path);
                    return (driver, port);
                }
            }
            tokio::time::sleep(POLL).await;
        }
        stop_driver(&mut driver);
    }
}
