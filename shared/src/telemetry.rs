//! Logging setup shared by every binary.

use tracing_subscriber::{fmt, EnvFilter};

/// Installs a `tracing` subscriber: human-readable lines at `info` unless
/// `RUST_LOG` says otherwise; JSON lines when `GUST_LOG_FORMAT=json`.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,lapin=warn"));
    let json = std::env::var("GUST_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = fmt().with_env_filter(filter).with_target(true);
    let result = if json { builder.json().try_init() } else { builder.try_init() };
    // A second call (tests start several components in one process) keeps the first subscriber.
    let _ = result;
}
