//! The HTTP client of the remote commands: where the API is, the token that
//! opens it (`gust login` stores both in a config file), and every request,
//! with the API's errors turned into one line that says what to do.

use std::{
    io::Write,
    path::{Path, PathBuf},
    time::Duration,
};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::{blocking, Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Environment variable naming the config file itself (tests point it into a temporary folder).
pub const CONFIG_ENV: &str = "GUST_CLI_CONFIG";
/// Environment variable overriding the stored API URL.
pub const URL_ENV: &str = "GUST_API_URL";
/// Environment variable overriding the stored token.
pub const TOKEN_ENV: &str = "GUST_API_TOKEN";

/// How long one request may take, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Characters escaped in a path segment (ids may hold `:`, `+`, `/`, spaces).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Why a remote command could not talk to the API; each says in one line what to do.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No URL or no token: nobody logged in, and no `GUST_API_URL`/`GUST_API_TOKEN`.
    #[error("not logged in: run `gust login --url URL --username USER` (or set {URL_ENV} and {TOKEN_ENV})")]
    NotLoggedIn,
    /// The URL is not one.
    #[error("`{url}` is not an http(s) URL of the gust API, e.g. http://localhost:8080")]
    BadUrl {
        /// What was given.
        url: String,
    },
    /// No answer from the server.
    #[error("cannot reach the gust API at {url}: {reason}; check the URL (`gust login --url`, {URL_ENV}) and that gust-webapi runs there")]
    Unreachable {
        /// The API's base URL.
        url: String,
        /// The innermost cause (connection refused, DNS, timeout).
        reason: String,
    },
    /// 401 on a request with a token: missing, expired, foreign or garbage.
    #[error("the API at {url} refused the token ({detail}): run `gust login`")]
    Unauthorized {
        /// The API's base URL.
        url: String,
        /// The API's explanation.
        detail: String,
    },
    /// 401 on `POST /auth/token`.
    #[error("login refused: {0}")]
    LoginRefused(String),
    /// 403: the user's role is too weak; the API names the role needed.
    #[error("permission denied: {0}")]
    Forbidden(String),
    /// 404: the API names what is missing.
    #[error("not found: {0}")]
    NotFound(String),
    /// Any other error status, with the API's detail.
    #[error("the API answered {status}: {detail}")]
    Api {
        /// The HTTP status.
        status: StatusCode,
        /// The API's explanation.
        detail: String,
    },
    /// A 2xx answer that is not the JSON expected.
    #[error("{url} did not answer as the gust API does: {reason}")]
    BadResponse {
        /// The request's URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// The config file could not be read or written.
    #[error("config file {}: {reason}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// What `gust login` stores: `~/.config/gust/config.toml`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Base URL of the API, e.g. `http://localhost:8080`.
    pub url: Option<String>,
    /// The user who logged in.
    pub username: Option<String>,
    /// Their bearer token.
    pub token: Option<String>,
}

/// The config file: `$GUST_CLI_CONFIG`, else `$XDG_CONFIG_HOME/gust/config.toml`, else `~/.config/gust/config.toml`.
pub fn config_path() -> Result<PathBuf, ClientError> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(path) = non_empty(CONFIG_ENV) {
        return Ok(path);
    }
    let folder = non_empty("XDG_CONFIG_HOME").or_else(|| non_empty("HOME").map(|home| home.join(".config")));
    folder.map(|folder| folder.join("gust").join("config.toml")).ok_or_else(|| ClientError::Config {
        path: PathBuf::from("~/.config/gust/config.toml"),
        reason: format!("neither HOME nor XDG_CONFIG_HOME is set; set {CONFIG_ENV} to a file path"),
    })
}

impl Config {
    /// Reads the config file; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<Config, ClientError> {
        let problem = |reason: String| ClientError::Config { path: path.to_path_buf(), reason };
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|e| problem(one_line(&e.to_string()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(problem(e.to_string())),
        }
    }

    /// Writes the config file, readable by its owner only (mode 0600), creating its folder.
    pub fn save(&self, path: &Path) -> Result<(), ClientError> {
        let problem = |reason: String| ClientError::Config { path: path.to_path_buf(), reason };
        let text = toml::to_string(self).map_err(|e| problem(e.to_string()))?;
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder).map_err(|e| problem(e.to_string()))?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
            options.mode(0o600);
            // The mode above applies to new files only: an older file gets it too, before the token is written.
            if path.exists() {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| problem(e.to_string()))?;
            }
        }
        let mut file = options.open(path).map_err(|e| problem(e.to_string()))?;
        file.write_all(text.as_bytes()).map_err(|e| problem(e.to_string()))
    }
}

/// A path segment with everything but unreserved characters percent-encoded.
pub fn segment(text: &str) -> String {
    utf8_percent_encode(text, SEGMENT).to_string()
}

/// `text` on one line: line breaks become spaces, runs of spaces one.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What a request carries.
enum Body<'a> {
    /// JSON, as most of the API takes.
    Json(&'a Value),
    /// A YAML document (a DAG file).
    Yaml(&'a str),
}

/// A client of one gust API: base URL and, once logged in, a bearer token.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    http: blocking::Client,
}

impl Client {
    /// A client of the API at `url` (trailing slashes ignored) sending `token`.
    pub fn new(url: &str, token: Option<String>) -> Result<Client, ClientError> {
        let base = url.trim().trim_end_matches('/').to_string();
        let parsed = reqwest::Url::parse(&base).map_err(|_| ClientError::BadUrl { url: url.to_string() })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(ClientError::BadUrl { url: url.to_string() });
        }
        let http = blocking::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("gust-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Unreachable { url: base.clone(), reason: innermost(&e) })?;
        Ok(Client { base, token, http })
    }

    /// The client of the stored login, with `GUST_API_URL` and `GUST_API_TOKEN` taking precedence.
    pub fn from_config() -> Result<Client, ClientError> {
        let config = Config::load(&config_path()?)?;
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let url = env(URL_ENV).or(config.url).ok_or(ClientError::NotLoggedIn)?;
        let token = env(TOKEN_ENV).or(config.token).ok_or(ClientError::NotLoggedIn)?;
        Client::new(&url, Some(token))
    }

    /// The API's base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// `POST /auth/token`: the access token of `username`.
    pub fn login(&self, username: &str, password: &str) -> Result<String, ClientError> {
        let body = json!({"username": username, "password": password});
        let answer = self.request(Method::POST, "/auth/token", &[], Some(Body::Json(&body))).map_err(|e| match e {
            ClientError::Unauthorized { detail, .. } => ClientError::LoginRefused(detail),
            other => other,
        })?;
        match answer["access_token"].as_str() {
            Some(token) if !token.is_empty() => Ok(token.to_string()),
            _ => Err(ClientError::BadResponse {
                url: format!("{}/auth/token", self.base),
                reason: "no access_token in the answer".into(),
            }),
        }
    }

    /// `GET path?query` as JSON.
    pub fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, ClientError> {
        self.request(Method::GET, path, query, None)
    }

    /// `method path` with a JSON body; the answer's JSON (`null` for an empty answer).
    pub fn send(&self, method: Method, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.request(method, path, &[], Some(Body::Json(body)))
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> Result<(), ClientError> {
        self.request(Method::DELETE, path, &[], None).map(drop)
    }

    /// `PUT path` with a YAML body (a DAG file); the answer's JSON.
    pub fn put_yaml(&self, path: &str, yaml: &str) -> Result<Value, ClientError> {
        self.request(Method::PUT, path, &[], Some(Body::Yaml(yaml)))
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Body<'_>>,
    ) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url).query(query).header("accept", "application/json");
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        match body {
            Some(Body::Json(json)) => request = request.json(json),
            Some(Body::Yaml(yaml)) => {
                request = request.header("content-type", "application/yaml").body(yaml.to_string())
            }
            None => {}
        }
        let response =
            request.send().map_err(|e| ClientError::Unreachable { url: self.base.clone(), reason: innermost(&e) })?;
        let status = response.status();
        let text =
            response.text().map_err(|e| ClientError::Unreachable { url: self.base.clone(), reason: innermost(&e) })?;
        if status.is_success() {
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text)
                .map_err(|e| ClientError::BadResponse { url, reason: format!("not JSON ({e})") });
        }
        let detail = error_detail(&text, status);
        Err(match status {
            StatusCode::UNAUTHORIZED => ClientError::Unauthorized { url: self.base.clone(), detail },
            StatusCode::FORBIDDEN => ClientError::Forbidden(detail),
            StatusCode::NOT_FOUND => ClientError::NotFound(detail),
            _ => ClientError::Api { status, detail },
        })
    }
}

/// The `detail` of an error answer (`{"status", "title", "detail"}`; a 422's
/// list of problems as their messages), else its text, on one line.
fn error_detail(text: &str, status: StatusCode) -> String {
    let detail = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(body)) => match body.get("detail") {
            Some(Value::String(detail)) => detail.clone(),
            Some(Value::Array(problems)) if problems.iter().all(|p| p["msg"].is_string()) && !problems.is_empty() => {
                problems.iter().map(problem_text).collect::<Vec<_>>().join("; ")
            }
            Some(other) => other.to_string(),
            None => text.to_string(),
        },
        _ => text.chars().take(300).collect(),
    };
    let detail = one_line(&detail);
    if detail.is_empty() {
        status.canonical_reason().unwrap_or("no explanation").to_lowercase()
    } else {
        detail
    }
}

/// One entry of a 422's `detail` (`{"loc": ["query", "limit"], "msg": …}`): its
/// message, after the parameter it is about when the message does not name it.
fn problem_text(problem: &Value) -> String {
    let msg = problem["msg"].as_str().unwrap_or_default();
    let loc: Vec<String> = problem["loc"]
        .as_array()
        .into_iter()
        .flatten()
        .skip(1)
        .map(|step| step.as_str().map_or_else(|| step.to_string(), str::to_string))
        .collect();
    match loc.last() {
        Some(name) if !msg.contains(name.as_str()) => format!("{}: {msg}", loc.join(".")),
        _ => msg.to_string(),
    }
}

/// The innermost cause of an error (e.g. "Connection refused (os error 111)"), which says the most.
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    let text = one_line(&cause.to_string());
    if text.is_empty() {
        one_line(&error.to_string())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_answers_are_reduced_to_their_detail_on_one_line() {
        let body = r#"{"status": 404, "title": "Not Found", "detail": "DAG `x`\nnot found"}"#;
        assert_eq!(error_detail(body, StatusCode::NOT_FOUND), "DAG `x` not found");
        assert_eq!(error_detail("<html>\n oops </html>", StatusCode::BAD_GATEWAY), "<html> oops </html>");
        assert_eq!(error_detail("", StatusCode::BAD_GATEWAY), "bad gateway");
    }

    #[test]
    fn a_validation_error_shows_each_problem_with_the_field_it_is_about() {
        let body = r#"{"detail": [
            {"loc": ["query", "limit"], "msg": "`limit` must be a whole number, got `x`", "type": "int_parsing"},
            {"loc": ["body", "pool", "slots"], "msg": "Field required", "type": "missing"}
        ]}"#;
        assert_eq!(
            error_detail(body, StatusCode::UNPROCESSABLE_ENTITY),
            "`limit` must be a whole number, got `x`; pool.slots: Field required"
        );
    }

    #[test]
    fn ids_are_escaped_as_path_segments() {
        assert_eq!(segment("manual__2026-11-25T16:20:00+00:00"), "manual__2026-11-25T16%3A20%3A00%2B00%3A00");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn only_http_urls_with_a_host_make_a_client() {
        assert!(Client::new("http://localhost:8080/", None).is_ok());
        assert_eq!(Client::new("https://gust.example.com/", None).unwrap().url(), "https://gust.example.com");
        for bad in ["localhost:8080", "ftp://x", "not a url", ""] {
            assert!(matches!(Client::new(bad, None), Err(ClientError::BadUrl { .. })), "{bad}");
        }
    }

    #[test]
    fn the_config_file_is_private_and_round_trips() {
        let dir = std::env::temp_dir().join(format!("gust-cli-config-{}", std::process::id()));
        let path = dir.join("nested").join("config.toml");
        let config = Config {
            url: Some("http://localhost:8080".into()),
            username: Some("admin".into()),
            token: Some("t".into()),
        };
        config.save(&path).unwrap();
        assert_eq!(Config::load(&path).unwrap(), config);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(Config::load(&dir.join("missing.toml")).unwrap(), Config::default());
        std::fs::write(&path, "url = [").unwrap();
        assert!(matches!(Config::load(&path), Err(ClientError::Config { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
