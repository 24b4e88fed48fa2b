//! Typed settings: built-in defaults < `gust.toml` < `GUST__SECTION__KEY`
//! environment variables, loaded once at start and validated.

use std::{path::PathBuf, time::Duration};

use serde::{Deserialize, Deserializer, Serialize};

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A source could not be read or a value has the wrong type.
    #[error("invalid configuration: {0}")]
    Load(#[from] config::ConfigError),
    /// A value parsed but makes no sense.
    #[error("invalid configuration: {key}: {problem}")]
    Invalid {
        /// The key in environment form, e.g. `GUST__WORKER__CONCURRENCY`.
        key: &'static str,
        /// What is wrong and what to do.
        problem: String,
    },
}

/// Every gust setting; each binary reads the sections it needs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// PostgreSQL connection.
    pub database: DatabaseSettings,
    /// RabbitMQ connection and naming.
    pub amqp: AmqpSettings,
    /// Where DAG files live.
    pub dags: DagsSettings,
    /// Scheduler timing.
    pub scheduler: SchedulerSettings,
    /// Worker capacity and routing.
    pub worker: WorkerSettings,
    /// HTTP API.
    pub webapi: WebapiSettings,
    /// API authentication: token signing and the first admin.
    pub auth: AuthSettings,
    /// Encryption at rest of connection secrets.
    pub secrets: SecretsSettings,
    /// The scheduler's and the worker's ops server (health probes).
    pub health: HealthSettings,
    /// The scheduler's periodic clean of old runs, dead letters and event log records.
    pub retention: RetentionSettings,
    /// Prometheus `/metrics` of every daemon.
    pub metrics: MetricsSettings,
}

/// Prometheus metrics settings (see [`crate::metrics`]).
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricsSettings {
    /// `host:port` of the scheduler's or worker's ops server (`/metrics`, `/healthz`, `/readyz`);
    /// empty means `GUST__HEALTH__BIND`, and both empty means off.
    pub bind: String,
    /// When set, `/metrics` answers only requests with `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

impl std::fmt::Debug for MetricsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsSettings")
            .field("bind", &self.bind)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Retention settings (see [`crate::retention`]); `gust db clean` does the same once, by hand.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RetentionSettings {
    /// Finished runs, dead letters and event log records older than this are deleted
    /// (`90d`, `12h`, …); empty (the default) means never.
    #[serde(with = "optional_duration")]
    pub max_age: Option<Duration>,
    /// How often a scheduler looks for expired rows (one scheduler at a time cleans).
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Runs (or dead letters, or event log records) deleted per transaction.
    pub batch_size: i64,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self { max_age: None, interval: Duration::from_secs(60 * 60), batch_size: DEFAULT_CLEAN_BATCH }
    }
}

/// Runs per transaction of a clean unless told otherwise: short transactions
/// that still delete a million task instances in minutes.
pub const DEFAULT_CLEAN_BATCH: i64 = 1000;

/// A duration as humantime text (`90d`), where empty (or absent) means none.
mod optional_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// `""` for none, else the humantime text.
    pub(super) fn serialize<S: Serializer>(value: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            None => serializer.serialize_str(""),
            Some(duration) => serializer.serialize_str(&humantime::format_duration(*duration).to_string()),
        }
    }

    /// Empty or absent is none; anything else must be a humantime duration.
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
        let text = Option::<String>::deserialize(deserializer)?.unwrap_or_default();
        if text.trim().is_empty() {
            return Ok(None);
        }
        humantime::parse_duration(text.trim()).map(Some).map_err(|e| {
            serde::de::Error::custom(format!(
                "`{text}` is not a duration such as 90d or 12h ({e}); leave it empty for no retention"
            ))
        })
    }
}

/// Ops server settings (`/healthz`, `/readyz`; see [`crate::health`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthSettings {
    /// `host:port` the scheduler or worker serves its probes on; empty (the default) means off.
    pub bind: String,
}

/// Encryption at rest settings.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SecretsSettings {
    /// Fernet key(s) in Airflow's `fernet_key` format, comma-separated: the first encrypts, any decrypts.
    pub key: Option<String>,
}

impl std::fmt::Debug for SecretsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsSettings").field("key", &self.key.as_ref().map(|_| "***")).finish()
    }
}

impl SecretsSettings {
    /// The keys, ready to use; `None` when no key is set.
    pub fn secrets(&self) -> Result<Option<crate::secrets::Secrets>, SettingsError> {
        crate::secrets::Secrets::from_keys(self.key.as_deref().unwrap_or_default())
            .map_err(|e| SettingsError::Invalid { key: crate::secrets::KEY_VARIABLE, problem: e.to_string() })
    }
}

/// PostgreSQL settings.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseSettings {
    /// `postgres://` URL of the gust database.
    pub url: String,
    /// Maximum connections in this process's pool.
    pub pool_size: usize,
}

/// RabbitMQ settings.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AmqpSettings {
    /// `amqp://` or `amqps://` URL of the broker, or several separated by
    /// commas (the nodes of a cluster): components connect to the first that
    /// answers and fail over to the next when they lose it.
    pub url: String,
    /// Prefix of every exchange and queue gust declares.
    pub namespace: String,
    /// Deliveries of one message before the broker dead-letters it (a task that keeps killing its worker).
    pub delivery_limit: u32,
    /// PEM file of CA certificates trusted for `amqps://`, besides the system's (a private CA).
    pub tls_ca_file: Option<PathBuf>,
    /// PEM certificate (chain) presented to the broker, for brokers that verify clients.
    pub tls_client_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8) of `tls_client_cert`.
    pub tls_client_key: Option<PathBuf>,
}

/// DAG folder settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DagsSettings {
    /// Folder of `*.yaml` / `*.yml` DAG files the scheduler watches.
    pub folder: PathBuf,
}

/// Scheduler settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SchedulerSettings {
    /// How often the DAG folder is re-scanned for new, changed and deleted files.
    #[serde(with = "humantime_serde")]
    pub rescan_interval: Duration,
    /// Safety-net pass over all live runs; the hot path is driven by NOTIFY.
    #[serde(with = "humantime_serde")]
    pub safety_interval: Duration,
    /// Most task instances dispatched in one transaction.
    pub dispatch_batch: usize,
    /// A running task whose worker has not heartbeated for this long is
    /// failed or retried by the scheduler (its worker is hung or gone).
    #[serde(with = "humantime_serde")]
    pub zombie_threshold: Duration,
    /// A task queued for longer than this (Airflow's `task_queued_timeout`)
    /// has its try failed, and retried by its retry rules: its message was
    /// lost (a database restored from a backup, broker data lost) or no
    /// worker consumes its queue.
    #[serde(with = "humantime_serde")]
    pub task_queued_timeout: Duration,
    /// Whether a DAG stored for the first time starts paused (Airflow's
    /// `dags_are_paused_at_creation`), unless its file sets `is_paused_upon_creation`.
    pub dags_are_paused_at_creation: bool,
}

/// Tasks a worker runs at once unless configured: Airflow's Celery `worker_concurrency` default.
/// Waiting tasks cost a tokio task or a child process, not a thread or a prefork slot.
pub const DEFAULT_WORKER_CONCURRENCY: usize = 16;

/// Worker settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkerSettings {
    /// Tasks run at once (Airflow's `worker_concurrency`, default 16).
    pub concurrency: usize,
    /// Messages reserved from the broker per concurrency slot (Celery's
    /// `worker_prefetch_multiplier`): prefetch = concurrency × this. 1, as in
    /// Airflow, keeps every waiting task in the broker where any idle worker
    /// can take it; more hides the broker's per-ack round trip from very
    /// short tasks at the cost of holding tasks back on a busy worker.
    pub prefetch_multiplier: usize,
    /// Queues this worker consumes (comma-separated in the environment).
    #[serde(deserialize_with = "comma_list")]
    pub queues: Vec<String>,
    /// Name recorded as the task's hostname; defaults to `host:pid`.
    pub name: Option<String>,
    /// Time a timed-out task gets between SIGTERM and SIGKILL.
    #[serde(with = "humantime_serde")]
    pub kill_grace: Duration,
    /// Bytes of log kept per try; the rest is dropped with a note.
    pub max_log_bytes: usize,
    /// Largest XCom a task may push, in bytes of JSON; a bigger one fails the try.
    pub max_xcom_bytes: usize,
    /// How often a worker records that it is alive and still running its tasks.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// A redelivered try whose previous worker has not heartbeated for this
    /// long is taken over (as the next try); shorter than the scheduler's zombie threshold.
    #[serde(with = "humantime_serde")]
    pub takeover_after: Duration,
    /// On SIGTERM, how long running tasks may take to finish before they are
    /// killed and handed back to the broker.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Folders searched for custom operator executables `gust-op-<name>`
    /// (colon-separated in the environment, like `PATH`); empty means no custom operators.
    #[serde(deserialize_with = "colon_list")]
    pub plugin_path: Vec<std::path::PathBuf>,
}

/// HTTP API settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct WebapiSettings {
    /// `host:port` to listen on.
    pub bind: String,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// PEM certificate (chain) to serve HTTPS with; with `tls_key`, the webapi speaks only HTTPS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Whether `GET /api/v2/config` shows the effective settings to admins (Airflow's
    /// `[api] expose_config`); secrets are hidden either way.
    pub expose_config: ExposeConfig,
    /// Whether `POST /api/v2/connections/test` and `…/enqueue-test` may test connections from the
    /// webapi (Airflow's `[core] test_connection`).
    pub test_connection: TestConnection,
}

/// Airflow's `[api] expose_config`: `false` (the default), `true` or `non-sensitive-only`
/// (which Airflow deprecated as a synonym of `true`, since secrets are always hidden).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ExposeConfig {
    /// `GET /api/v2/config` answers 403.
    #[default]
    False,
    /// The settings are shown, secrets hidden.
    True,
    /// As `True`.
    NonSensitiveOnly,
}

impl ExposeConfig {
    /// Whether the settings may be shown at all.
    pub fn exposed(self) -> bool {
        self != ExposeConfig::False
    }
}

impl Serialize for ExposeConfig {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(match self {
            ExposeConfig::False => "false",
            ExposeConfig::True => "true",
            ExposeConfig::NonSensitiveOnly => "non-sensitive-only",
        })
    }
}

impl<'de> Deserialize<'de> for ExposeConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum BoolOrText {
            Bool(bool),
            Text(String),
        }
        match BoolOrText::deserialize(deserializer)? {
            BoolOrText::Bool(true) => Ok(ExposeConfig::True),
            BoolOrText::Bool(false) => Ok(ExposeConfig::False),
            BoolOrText::Text(text) => match text.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(ExposeConfig::True),
                "false" | "0" | "no" | "" => Ok(ExposeConfig::False),
                "non-sensitive-only" => Ok(ExposeConfig::NonSensitiveOnly),
                _ => Err(serde::de::Error::custom(format!(
                    "`{text}` is not one of false, true, non-sensitive-only (GUST__WEBAPI__EXPOSE_CONFIG)"
                ))),
            },
        }
    }
}

/// Airflow's `[core] test_connection`: `Disabled` (the default), `Enabled` or `Hidden`
/// (tests refused, as `Disabled`; Airflow's UI also hides its button).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TestConnection {
    /// Connection tests answer 403.
    #[default]
    Disabled,
    /// The webapi tests connections.
    Enabled,
    /// As `Disabled`.
    Hidden,
}

impl Serialize for TestConnection {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(match self {
            TestConnection::Disabled => "Disabled",
            TestConnection::Enabled => "Enabled",
            TestConnection::Hidden => "Hidden",
        })
    }
}

impl<'de> Deserialize<'de> for TestConnection {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.trim().to_ascii_lowercase().as_str() {
            "disabled" => Ok(TestConnection::Disabled),
            "enabled" => Ok(TestConnection::Enabled),
            "hidden" => Ok(TestConnection::Hidden),
            _ => Err(serde::de::Error::custom(format!(
                "`{text}` is not one of Disabled, Enabled, Hidden (GUST__WEBAPI__TEST_CONNECTION)"
            ))),
        }
    }
}

/// Shortest JWT signing secret accepted, in bytes (HS256 wants at least its 256-bit output).
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// API authentication settings.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthSettings {
    /// HS256 key that signs API tokens; unset outside production means a random one per process.
    pub jwt_secret: Option<String>,
    /// How long an issued token is valid (Airflow's `jwt_expiration_time`, 24h).
    #[serde(with = "humantime_serde")]
    pub token_lifetime: Duration,
    /// How long a token from `POST /auth/token/cli` is valid (Airflow's `jwt_cli_expiration_time`, 1h).
    #[serde(with = "humantime_serde")]
    pub cli_token_lifetime: Duration,
    /// Production mode: a missing or short `jwt_secret` stops the webapi instead of being generated.
    pub production: bool,
    /// Name of an admin user the webapi creates or updates at start (with `admin_password`).
    pub admin_username: Option<String>,
    /// Password of `admin_username`.
    pub admin_password: Option<String>,
}

impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &redact_url(&self.url))
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

impl std::fmt::Debug for AmqpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpSettings")
            .field("url", &redact_url(&self.url))
            .field("namespace", &self.namespace)
            .field("delivery_limit", &self.delivery_limit)
            .field("tls_ca_file", &self.tls_ca_file)
            .field("tls_client_cert", &self.tls_client_cert)
            .field("tls_client_key", &self.tls_client_key)
            .finish()
    }
}

impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "***");
        f.debug_struct("AuthSettings")
            .field("jwt_secret", &redacted(&self.jwt_secret))
            .field("token_lifetime", &self.token_lifetime)
            .field("cli_token_lifetime", &self.cli_token_lifetime)
            .field("production", &self.production)
            .field("admin_username", &self.admin_username)
            .field("admin_password", &redacted(&self.admin_password))
            .finish()
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            token_lifetime: Duration::from_secs(24 * 60 * 60),
            cli_token_lifetime: Duration::from_secs(60 * 60),
            production: false,
            admin_username: None,
            admin_password: None,
        }
    }
}

impl AuthSettings {
    fn validate(&self) -> Result<(), SettingsError> {
        let secret_len = self.jwt_secret.as_deref().map_or(0, str::len);
        if self.production && secret_len < MIN_JWT_SECRET_BYTES {
            return Err(SettingsError::Invalid {
                key: "GUST__AUTH__JWT_SECRET",
                problem: format!(
                    "production mode (GUST__AUTH__PRODUCTION) needs a secret of at least {MIN_JWT_SECRET_BYTES} bytes, e.g. `openssl rand -hex 32`"
                ),
            });
        }
        if self.jwt_secret.is_some() && secret_len == 0 {
            return Err(SettingsError::Invalid {
                key: "GUST__AUTH__JWT_SECRET",
                problem: "is empty; unset it or set a secret".into(),
            });
        }
        if self.token_lifetime.is_zero() {
            return Err(SettingsError::Invalid {
                key: "GUST__AUTH__TOKEN_LIFETIME",
                problem: "must be longer than 0s".into(),
            });
        }
        if self.cli_token_lifetime.is_zero() {
            return Err(SettingsError::Invalid {
                key: "GUST__AUTH__CLI_TOKEN_LIFETIME",
                problem: "must be longer than 0s".into(),
            });
        }
        match (&self.admin_username, &self.admin_password) {
            (Some(_), None) => Err(SettingsError::Invalid {
                key: "GUST__AUTH__ADMIN_PASSWORD",
                problem: "GUST__AUTH__ADMIN_USERNAME is set, so its password must be too".into(),
            }),
            (None, Some(_)) => Err(SettingsError::Invalid {
                key: "GUST__AUTH__ADMIN_USERNAME",
                problem: "GUST__AUTH__ADMIN_PASSWORD is set without the user it belongs to".into(),
            }),
            (Some(name), Some(_)) if name.trim().is_empty() => {
                Err(SettingsError::Invalid { key: "GUST__AUTH__ADMIN_USERNAME", problem: "must not be empty".into() })
            }
            _ => Ok(()),
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self { url: "postgres://postgres@127.0.0.1:5432/gust".into(), pool_size: 16 }
    }
}

impl AmqpSettings {
    /// The broker URLs to try, in order (`url` split at its commas).
    pub fn urls(&self) -> impl Iterator<Item = &str> {
        self.url.split(',').map(str::trim).filter(|url| !url.is_empty())
    }
}

impl Default for AmqpSettings {
    fn default() -> Self {
        Self {
            url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            namespace: "gust".into(),
            delivery_limit: 10,
            tls_ca_file: None,
            tls_client_cert: None,
            tls_client_key: None,
        }
    }
}

impl Default for DagsSettings {
    fn default() -> Self {
        Self { folder: PathBuf::from("./dags") }
    }
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        Self {
            rescan_interval: Duration::from_secs(30),
            safety_interval: Duration::from_secs(5),
            dispatch_batch: 500,
            zombie_threshold: Duration::from_secs(60),
            task_queued_timeout: Duration::from_secs(600),
            dags_are_paused_at_creation: true,
        }
    }
}

impl WorkerSettings {
    /// Unacknowledged deliveries the broker may hand this worker: concurrency × prefetch multiplier.
    pub fn prefetch_limit(&self) -> usize {
        self.concurrency.saturating_mul(self.prefetch_multiplier)
    }
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            concurrency: DEFAULT_WORKER_CONCURRENCY,
            prefetch_multiplier: 1,
            queues: vec!["default".into()],
            name: None,
            kill_grace: Duration::from_secs(5),
            max_log_bytes: 4 * 1024 * 1024,
            max_xcom_bytes: 1024 * 1024,
            heartbeat_interval: Duration::from_secs(5),
            takeover_after: Duration::from_secs(20),
            shutdown_grace: Duration::from_secs(30),
            plugin_path: Vec::new(),
        }
    }
}

impl Default for WebapiSettings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            max_body_bytes: 1024 * 1024,
            tls_cert: None,
            tls_key: None,
            expose_config: ExposeConfig::False,
            test_connection: TestConnection::Disabled,
        }
    }
}

impl Settings {
    /// Loads defaults, then `gust.toml` (or the file named by `GUST_CONFIG`), then the environment.
    pub fn load() -> Result<Self, SettingsError> {
        let file = std::env::var("GUST_CONFIG").unwrap_or_else(|_| "gust.toml".into());
        let loaded: Settings = config::Config::builder()
            .add_source(config::Config::try_from(&Settings::default())?)
            .add_source(config::File::with_name(&file).required(std::env::var("GUST_CONFIG").is_ok()))
            .add_source(config::Environment::with_prefix("GUST").prefix_separator("__").separator("__"))
            .build()?
            .try_deserialize()?;
        loaded.validated()
    }

    /// Checks values that parse but cannot work, and fills in derived defaults.
    pub fn validated(self) -> Result<Self, SettingsError> {
        check_database_url(&self.database.url)?;
        if let Some(bad) = self.amqp.urls().find(|url| !url.starts_with("amqp://") && !url.starts_with("amqps://")) {
            return Err(SettingsError::Invalid {
                key: "GUST__AMQP__URL",
                problem: format!(
                    "`{}` is not an amqp:// URL (give one URL, or several separated by commas for failover)",
                    redact_url(bad)
                ),
            });
        }
        if self.webapi.tls_cert.is_some() != self.webapi.tls_key.is_some() {
            return Err(SettingsError::Invalid {
                key: "GUST__WEBAPI__TLS_CERT",
                problem: "set both GUST__WEBAPI__TLS_CERT and GUST__WEBAPI__TLS_KEY for HTTPS, or neither".into(),
            });
        }
        if self.amqp.tls_client_cert.is_some() != self.amqp.tls_client_key.is_some() {
            return Err(SettingsError::Invalid {
                key: "GUST__AMQP__TLS_CLIENT_CERT",
                problem: "set both GUST__AMQP__TLS_CLIENT_CERT and GUST__AMQP__TLS_CLIENT_KEY, or neither".into(),
            });
        }
        let ns_ok = !self.amqp.namespace.is_empty()
            && self.amqp.namespace.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !ns_ok {
            return Err(SettingsError::Invalid {
                key: "GUST__AMQP__NAMESPACE",
                problem: "must be non-empty letters, digits, '-', '_' or '.'".into(),
            });
        }
        if self.amqp.delivery_limit == 0 {
            return Err(SettingsError::Invalid {
                key: "GUST__AMQP__DELIVERY_LIMIT",
                problem: "must be at least 1".into(),
            });
        }
        if self.worker.concurrency == 0 {
            return Err(SettingsError::Invalid {
                key: "GUST__WORKER__CONCURRENCY",
                problem: "must be at least 1".into(),
            });
        }
        if self.worker.prefetch_multiplier == 0 || self.worker.prefetch_limit() > usize::from(u16::MAX) {
            return Err(SettingsError::Invalid {
                key: "GUST__WORKER__PREFETCH_MULTIPLIER",
                problem: format!(
                    "must be at least 1, and concurrency × multiplier at most {} (AMQP's prefetch limit)",
                    u16::MAX
                ),
            });
        }
        if self.worker.queues.is_empty() {
            return Err(SettingsError::Invalid {
                key: "GUST__WORKER__QUEUES",
                problem: "name at least one queue".into(),
            });
        }
        if self.worker.takeover_after <= self.worker.heartbeat_interval * 2 {
            return Err(SettingsError::Invalid {
                key: "GUST__WORKER__TAKEOVER_AFTER",
                problem: "must be more than twice GUST__WORKER__HEARTBEAT_INTERVAL, or live workers look dead".into(),
            });
        }
        if self.scheduler.zombie_threshold <= self.worker.takeover_after {
            return Err(SettingsError::Invalid {
                key: "GUST__SCHEDULER__ZOMBIE_THRESHOLD",
                problem: "must be longer than GUST__WORKER__TAKEOVER_AFTER, so a redelivered try is taken over before it is declared a zombie".into(),
            });
        }
        if self.scheduler.task_queued_timeout < Duration::from_secs(1) {
            return Err(SettingsError::Invalid {
                key: "GUST__SCHEDULER__TASK_QUEUED_TIMEOUT",
                problem: "must be at least 1s; tasks waiting behind a long queue should not be retried, so keep it well above the longest wait you expect (default 10m)".into(),
            });
        }
        if self.database.pool_size == 0 {
            return Err(SettingsError::Invalid {
                key: "GUST__DATABASE__POOL_SIZE",
                problem: "must be at least 1".into(),
            });
        }
        if self.scheduler.dispatch_batch == 0 {
            return Err(SettingsError::Invalid {
                key: "GUST__SCHEDULER__DISPATCH_BATCH",
                problem: "must be at least 1".into(),
            });
        }
        for (key, bind) in [("GUST__HEALTH__BIND", &self.health.bind), ("GUST__METRICS__BIND", &self.metrics.bind)] {
            let host_port =
                bind.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !bind.is_empty() && !host_port {
                return Err(SettingsError::Invalid {
                    key,
                    problem: format!("`{bind}` is not host:port, e.g. 0.0.0.0:9090; leave it empty for no ops server"),
                });
            }
        }
        if !self.health.bind.is_empty() && !self.metrics.bind.is_empty() && self.health.bind != self.metrics.bind {
            return Err(SettingsError::Invalid {
                key: "GUST__METRICS__BIND",
                problem: format!(
                    "`{}` differs from GUST__HEALTH__BIND `{}`: one ops server serves /metrics, /healthz and /readyz, so set one of them (or both the same)",
                    self.metrics.bind, self.health.bind
                ),
            });
        }
        if self.metrics.token.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err(SettingsError::Invalid {
                key: "GUST__METRICS__TOKEN",
                problem: "is empty; unset it for an open /metrics or set a token".into(),
            });
        }
        if self.retention.max_age.is_some_and(|age| age.is_zero()) {
            return Err(SettingsError::Invalid {
                key: "GUST__RETENTION__MAX_AGE",
                problem: "must be longer than 0s (0 would delete every finished run); leave it empty for no retention"
                    .into(),
            });
        }
        if self.retention.interval.is_zero() {
            return Err(SettingsError::Invalid {
                key: "GUST__RETENTION__INTERVAL",
                problem: "must be longer than 0s".into(),
            });
        }
        if self.retention.batch_size < 1 {
            return Err(SettingsError::Invalid {
                key: "GUST__RETENTION__BATCH_SIZE",
                problem: "must be at least 1".into(),
            });
        }
        self.auth.validate()?;
        self.secrets.secrets()?;
        Ok(self)
    }

    /// Where the scheduler's or worker's ops server listens (`/metrics`, `/healthz`, `/readyz`):
    /// `GUST__METRICS__BIND`, else `GUST__HEALTH__BIND`; empty means no ops server.
    pub fn ops_bind(&self) -> &str {
        if self.metrics.bind.is_empty() {
            &self.health.bind
        } else {
            &self.metrics.bind
        }
    }

    /// The same settings without an ops server (in-process runs, a second daemon in one process).
    pub fn without_ops_server(self) -> Settings {
        Settings {
            health: Default::default(),
            metrics: MetricsSettings { bind: String::new(), ..self.metrics },
            ..self
        }
    }

    /// The name a worker records on the task instances it runs.
    pub fn worker_name(&self) -> String {
        self.worker.name.clone().unwrap_or_else(|| format!("{}:{}", host_name(), std::process::id()))
    }
}

/// This machine's name, for heartbeats and task instances.
pub fn host_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    if host.is_empty() {
        "localhost".to_string()
    } else {
        host
    }
}

/// Checks that `url` is a PostgreSQL URL (`postgres://u@h1:5432,h2:5433/db?…`)
/// or keyword string (`host=h1,h2 port=5432,5433 dbname=db …`) that the driver accepts.
fn check_database_url(url: &str) -> Result<(), SettingsError> {
    let invalid = |problem: String| SettingsError::Invalid { key: "GUST__DATABASE__URL", problem };
    let url_form = url.starts_with("postgres://") || url.starts_with("postgresql://");
    if !url_form && (url.contains("://") || !url.contains('=')) {
        return Err(invalid(format!(
            "`{}` is neither a postgres:// URL nor a `host=… dbname=…` keyword string",
            redact_url(url)
        )));
    }
    crate::db::tls::connect_spec(url).map(|_| ()).map_err(|e| match e {
        crate::db::DbError::BadUrl { url, cause } => {
            invalid(format!("`{url}` is not a valid PostgreSQL connection string: {cause}"))
        }
        other => invalid(other.to_string()),
    })
}

/// `url` with every password replaced by `***`, for logs and error messages.
///
/// Handles each form gust accepts: one URL (`scheme://user:pw@host/…`), a
/// comma-separated list of URLs (RabbitMQ failover), a multi-host PostgreSQL
/// URL (`postgres://user:pw@h1,h2/db`), a `password=` query parameter, and a
/// PostgreSQL keyword string (`host=h1,h2 password=pw dbname=gust`).
pub fn redact_url(url: &str) -> String {
    if !url.contains("://") {
        return redact_keyword_password(url);
    }
    url.split(',').map(redact_one_url).collect::<Vec<_>>().join(",")
}

/// One `scheme://user:pw@host…` URL (or a later host of a multi-host URL) without its password.
fn redact_one_url(url: &str) -> String {
    let without_userinfo = match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
                None => url.to_string(),
            },
            None => url.to_string(),
        },
        None => url.to_string(),
    };
    match without_userinfo.split_once('?') {
        Some((head, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                    _ => pair.to_string(),
                })
                .collect();
            format!("{head}?{}", query.join("&"))
        }
        None => without_userinfo,
    }
}

/// A PostgreSQL keyword string (`host=… password=… …`) with the password's value replaced by `***`.
fn redact_keyword_password(conninfo: &str) -> String {
    let mut out = String::with_capacity(conninfo.len());
    let mut rest = conninfo;
    while let Some(at) = find_password_key(rest) {
        let (before, after) = rest.split_at(at);
        out.push_str(before);
        let equals = after.find('=').map_or(after.len(), |e| e + 1);
        let (key, value) = after.split_at(equals);
        out.push_str(key);
        let value_start = value.len() - value.trim_start().len();
        out.push_str(&value[..value_start]);
        out.push_str("***");
        rest = skip_keyword_value(&value[value_start..]);
    }
    out.push_str(rest);
    out
}

/// Byte offset of a `password =` key at a word start in a keyword string.
fn find_password_key(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find("password") {
        let at = from + found;
        let word_start = at == 0 || lower.as_bytes()[at - 1].is_ascii_whitespace();
        let after = lower[at + "password".len()..].trim_start();
        if word_start && after.starts_with('=') {
            return Some(at);
        }
        from = at + "password".len();
    }
    None
}

/// What follows one keyword value: a quoted value ends at its closing quote
/// (backslash escapes honoured), an unquoted one at whitespace.
fn skip_keyword_value(value: &str) -> &str {
    if let Some(quoted) = value.strip_prefix('\'') {
        let mut escaped = false;
        for (i, c) in quoted.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '\'' if !escaped => return &quoted[i + 1..],
                _ => escaped = false,
            }
        }
        return "";
    }
    let end = value.find(|c: char| c.is_ascii_whitespace()).unwrap_or(value.len());
    &value[end..]
}

/// A `PATH`-like list: a list, or one string of folders separated by `:`; empty entries are dropped.
fn colon_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<std::path::PathBuf>, D::Error> {
    Ok(split_list(deserializer, ':')?.into_iter().map(Into::into).collect())
}

fn comma_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    split_list(deserializer, ',')
}

/// A list, or one string of items separated by `separator`; items are trimmed and empty ones dropped.
fn split_list<'de, D: Deserializer<'de>>(deserializer: D, separator: char) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrString {
        List(Vec<String>),
        Text(String),
    }
    let items = match ListOrString::deserialize(deserializer)? {
        ListOrString::List(items) => items,
        ListOrString::Text(text) => text.split(separator).map(str::to_string).collect(),
    };
    Ok(items.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Settings as `load` builds them, with `key` set to `value` as an environment variable would.
    fn with_override(key: &str, value: &str) -> Result<Settings, SettingsError> {
        let loaded: Settings = config::Config::builder()
            .add_source(config::Config::try_from(&Settings::default())?)
            .set_override(key, value)?
            .build()?
            .try_deserialize()?;
        loaded.validated()
    }

    #[test]
    fn retention_is_off_when_empty_and_takes_humantime_ages() {
        assert_eq!(Settings::default().retention.max_age, None);
        assert_eq!(with_override("retention.max_age", "").unwrap().retention.max_age, None);
        let ninety_days = Duration::from_secs(90 * 24 * 60 * 60);
        assert_eq!(with_override("retention.max_age", "90d").unwrap().retention.max_age, Some(ninety_days));
        let error = with_override("retention.max_age", "soon").unwrap_err().to_string();
        assert!(error.contains("soon") && error.contains("90d"), "{error}");
        let error = with_override("retention.max_age", "0s").unwrap_err().to_string();
        assert!(error.contains("GUST__RETENTION__MAX_AGE"), "{error}");
    }

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(redact_url("amqp://guest:secret@host:5672/%2f"), "amqp://guest:***@host:5672/%2f");
        assert_eq!(redact_url("postgres://postgres@127.0.0.1/gust"), "postgres://postgres@127.0.0.1/gust");
    }

    #[test]
    fn every_password_of_a_failover_list_or_multi_host_url_is_redacted() {
        assert_eq!(
            redact_url("amqp://a:one@h1:5672/%2f,amqps://b:two@h2:5671/%2f"),
            "amqp://a:***@h1:5672/%2f,amqps://b:***@h2:5671/%2f"
        );
        assert_eq!(
            redact_url("postgres://u:pw@h1:5432,h2:5433/gust?target_session_attrs=read-write"),
            "postgres://u:***@h1:5432,h2:5433/gust?target_session_attrs=read-write"
        );
        assert_eq!(
            redact_url("postgres://u@h1/gust?sslmode=verify-full&password=pw"),
            "postgres://u@h1/gust?sslmode=verify-full&password=***"
        );
    }

    #[test]
    fn the_password_of_a_keyword_connection_string_is_redacted_quoted_or_not() {
        assert_eq!(
            redact_url("host=h1,h2 port=5432,5433 password=pw dbname=gust"),
            "host=h1,h2 port=5432,5433 password=*** dbname=gust"
        );
        assert_eq!(redact_url(r"host=h password = 'it\'s secret' user=u"), "host=h password = *** user=u");
        assert_eq!(redact_url("host=h user=password_owner"), "host=h user=password_owner");
    }

    #[test]
    fn both_multi_host_forms_of_a_database_url_are_accepted() {
        for url in [
            "postgres://postgres@127.0.0.1:5432,127.0.0.1:5433/gust?target_session_attrs=read-write",
            "host=127.0.0.1,127.0.0.1 port=5432,5433 user=postgres dbname=gust target_session_attrs=read-write",
        ] {
            let mut settings = Settings::default();
            settings.database.url = url.into();
            assert!(settings.validated().is_ok(), "{url}");
        }
    }

    #[test]
    fn half_a_tls_pair_is_refused_naming_the_missing_setting() {
        let mut settings = Settings::default();
        settings.webapi.tls_cert = Some("/etc/gust/cert.pem".into());
        let error = settings.validated().unwrap_err().to_string();
        assert!(error.contains("GUST__WEBAPI__TLS_KEY"), "{error}");
        let mut settings = Settings::default();
        settings.amqp.tls_client_key = Some("/etc/gust/client.key".into());
        let error = settings.validated().unwrap_err().to_string();
        assert!(error.contains("GUST__AMQP__TLS_CLIENT_CERT"), "{error}");
    }

    #[test]
    fn a_database_url_whose_root_certificate_is_missing_is_refused_at_start() {
        let mut settings = Settings::default();
        settings.database.url = "postgres://u:pw@h/gust?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem".into();
        let error = settings.validated().unwrap_err().to_string();
        assert!(error.contains("/nonexistent/ca.pem") && error.contains("GUST__DATABASE__URL"), "{error}");
        assert!(!error.contains("pw@"), "{error}");
    }

    #[test]
    fn a_list_of_amqp_urls_is_accepted_and_a_bad_member_is_named_without_its_password() {
        let mut settings = Settings::default();
        settings.amqp.url = "amqp://g:g@n1:5672/%2f, amqp://g:g@n2:5673/%2f".into();
        let settings = settings.validated().expect("a failover list is valid");
        assert_eq!(settings.amqp.urls().collect::<Vec<_>>(), ["amqp://g:g@n1:5672/%2f", "amqp://g:g@n2:5673/%2f"]);
        let mut settings = Settings::default();
        settings.amqp.url = "amqp://g:g@n1:5672/%2f,http://g:secret@n2".into();
        let error = settings.validated().unwrap_err().to_string();
        assert!(error.contains("http://g:***@n2") && !error.contains("secret"), "{error}");
    }

    #[test]
    fn a_non_postgres_database_url_is_rejected_with_its_key() {
        let mut settings = Settings::default();
        settings.database.url = "mysql://x".into();
        let err = settings.validated().unwrap_err().to_string();
        assert!(err.contains("GUST__DATABASE__URL"), "{err}");
    }

    #[test]
    fn production_mode_without_a_long_secret_is_rejected_naming_the_variable() {
        let mut settings = Settings::default();
        settings.auth.production = true;
        let err = settings.clone().validated().unwrap_err().to_string();
        assert!(err.contains("GUST__AUTH__JWT_SECRET"), "{err}");
        settings.auth.jwt_secret = Some("short".into());
        assert!(settings.clone().validated().is_err());
        settings.auth.jwt_secret = Some("x".repeat(MIN_JWT_SECRET_BYTES));
        assert!(settings.validated().is_ok());
    }

    #[test]
    fn an_admin_username_without_a_password_is_rejected() {
        let mut settings = Settings::default();
        settings.auth.admin_username = Some("admin".into());
        let err = settings.validated().unwrap_err().to_string();
        assert!(err.contains("GUST__AUTH__ADMIN_PASSWORD"), "{err}");
    }

    #[test]
    fn secrets_are_not_in_debug_output() {
        let mut settings = Settings::default();
        settings.auth.jwt_secret = Some("top-secret-signing-key".into());
        settings.auth.admin_password = Some("hunter2hunter2".into());
        settings.database.url = "postgres://gust:db-password@h1,h2/gust".into();
        settings.amqp.url = "amqp://gust:mq-password@n1/%2f,amqp://gust:mq-password@n2/%2f".into();
        let shown = format!("{settings:?}");
        for secret in ["top-secret", "hunter2", "db-password", "mq-password"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }

    #[test]
    fn a_prefetch_beyond_amqps_limit_is_rejected_naming_the_variable() {
        let mut settings = Settings::default();
        settings.worker.concurrency = 1000;
        settings.worker.prefetch_multiplier = 100;
        let message = settings.clone().validated().unwrap_err().to_string();
        assert!(message.contains("GUST__WORKER__PREFETCH_MULTIPLIER"), "{message}");
        settings.worker.prefetch_multiplier = 0;
        let message = settings.clone().validated().unwrap_err().to_string();
        assert!(message.contains("GUST__WORKER__PREFETCH_MULTIPLIER"), "{message}");
        settings.worker.prefetch_multiplier = 4;
        assert!(settings.validated().is_ok());
    }

    #[test]
    fn a_health_bind_must_be_host_and_port_or_empty() {
        let mut settings = Settings::default();
        assert!(settings.clone().validated().is_ok(), "empty means off");
        for bad in ["9090", ":9090", "0.0.0.0:", "0.0.0.0:http"] {
            settings.health.bind = bad.into();
            let err = settings.clone().validated().unwrap_err().to_string();
            assert!(err.contains("GUST__HEALTH__BIND"), "{bad}: {err}");
        }
        settings.health.bind = "0.0.0.0:9090".into();
        assert!(settings.validated().is_ok());
    }

    #[test]
    fn metrics_and_health_binds_name_one_ops_server_and_may_not_differ() {
        let mut settings = Settings::default();
        settings.metrics.bind = "0.0.0.0:9100".into();
        assert_eq!(settings.clone().validated().unwrap().ops_bind(), "0.0.0.0:9100");
        settings.health.bind = "0.0.0.0:9100".into();
        assert_eq!(settings.clone().validated().unwrap().ops_bind(), "0.0.0.0:9100", "both the same is fine");
        settings.health.bind = "0.0.0.0:9090".into();
        let err = settings.clone().validated().unwrap_err().to_string();
        assert!(err.contains("GUST__METRICS__BIND") && err.contains("GUST__HEALTH__BIND"), "{err}");
        settings.metrics.bind = String::new();
        assert_eq!(
            settings.clone().validated().unwrap().ops_bind(),
            "0.0.0.0:9090",
            "the health bind alone still works"
        );
        settings.metrics.bind = "9100".into();
        assert!(settings.clone().validated().unwrap_err().to_string().contains("GUST__METRICS__BIND"));
        settings.metrics.bind = String::new();
        settings.metrics.token = Some(" ".into());
        assert!(settings.validated().unwrap_err().to_string().contains("GUST__METRICS__TOKEN"));
    }

    #[test]
    fn expose_config_and_test_connection_take_airflows_values() {
        assert_eq!(Settings::default().webapi.expose_config, ExposeConfig::False);
        assert_eq!(Settings::default().webapi.test_connection, TestConnection::Disabled);
        assert_eq!(with_override("webapi.expose_config", "true").unwrap().webapi.expose_config, ExposeConfig::True);
        let settings = with_override("webapi.expose_config", "non-sensitive-only").unwrap();
        assert_eq!(settings.webapi.expose_config, ExposeConfig::NonSensitiveOnly);
        let error = with_override("webapi.expose_config", "maybe").unwrap_err().to_string();
        assert!(error.contains("non-sensitive-only"), "{error}");
        let settings = with_override("webapi.test_connection", "Enabled").unwrap();
        assert_eq!(settings.webapi.test_connection, TestConnection::Enabled);
        assert!(with_override("webapi.test_connection", "on").unwrap_err().to_string().contains("Disabled"));
    }

    #[test]
    fn zero_concurrency_is_rejected_naming_the_variable() {
        let mut settings = Settings::default();
        settings.worker.concurrency = 0;
        let err = settings.validated().unwrap_err().to_string();
        assert!(err.contains("GUST__WORKER__CONCURRENCY"), "{err}");
    }
}
