//! Prometheus metrics plumbing every daemon shares: a registry turned into
//! the Prometheus text format (0.0.4) at `GET /metrics`, optionally behind a
//! bearer token (`GUST__METRICS__TOKEN`), and the histogram buckets. Each
//! daemon defines its own metrics (`scheduler/src/metrics.rs`,
//! `worker/src/metrics.rs`, `webapi/src/metrics.rs`) in its own registry, so
//! several daemons in one process (tests, `gust standalone`) never mix counts.
//! Register counters without `_total` and help texts without a final period:
//! the encoder adds both.

use std::sync::Arc;

use axum::{
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use prometheus_client::{
    encoding::prometheus_text,
    metrics::{family::Family, histogram::Histogram},
    registry::Registry,
};

/// Bucket bounds, in seconds, of every duration histogram: 5 ms to 10 minutes.
pub const SECONDS_BUCKETS: [f64; 15] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0];

/// A histogram of durations in seconds with [`SECONDS_BUCKETS`].
pub fn seconds_histogram() -> Histogram {
    Histogram::new(SECONDS_BUCKETS)
}

/// A labelled family of [`seconds_histogram`]s.
pub type SecondsFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// An empty [`SecondsFamily`].
pub fn seconds_family<L: Clone + std::hash::Hash + Eq>() -> SecondsFamily<L> {
    Family::new_with_constructor(seconds_histogram as fn() -> Histogram)
}

/// One daemon's registry, ready to be served at `/metrics`.
#[derive(Clone)]
pub struct Exposition {
    registry: Arc<Registry>,
    token: Option<Arc<str>>,
}

impl std::fmt::Debug for Exposition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exposition").field("token", &self.token.as_ref().map(|_| "***")).finish()
    }
}

impl Exposition {
    /// Serves `registry`; with `token`, only to requests carrying `Authorization: Bearer <token>`.
    pub fn new(registry: Registry, token: Option<String>) -> Exposition {
        Exposition { registry: Arc::new(registry), token: token.map(Into::into) }
    }

    /// The registry in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        prometheus_text::encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }

    /// `GET /metrics`.
    pub fn router<S: Clone + Send + Sync + 'static>(self) -> Router<S> {
        Router::new().route("/metrics", get(scrape)).with_state(self)
    }

    /// Whether `headers` may read the metrics.
    fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.token else { return true };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        constant_time_eq(given.as_bytes(), token.as_bytes())
    }
}

/// Compares without stopping at the first difference, so the time taken tells nothing about the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn scrape(State(exposition): State<Exposition>, headers: HeaderMap) -> Response {
    if !exposition.allows(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "/metrics needs `Authorization: Bearer <token>` with the token set in GUST__METRICS__TOKEN\n",
        )
            .into_response();
    }
    ([(header::CONTENT_TYPE, prometheus_text::CONTENT_TYPE)], exposition.render()).into_response()
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;

    use super::*;

    #[test]
    fn a_counter_is_rendered_with_its_total_suffix_and_help() {
        let mut registry = Registry::default();
        let counter: Counter = Counter::default();
        registry.register("gust_example", "An example", counter.clone());
        counter.inc_by(3);
        let text = Exposition::new(registry, None).render();
        assert!(text.contains("# HELP gust_example_total An example.\n"), "{text}");
        assert!(text.contains("\ngust_example_total 3\n"), "{text}");
    }

    #[test]
    fn a_token_lets_in_only_its_bearer() {
        let exposition = Exposition::new(Registry::default(), Some("s3cret".into()));
        let mut headers = HeaderMap::new();
        assert!(!exposition.allows(&headers));
        headers.insert(header::AUTHORIZATION, "Bearer wrong".parse().unwrap());
        assert!(!exposition.allows(&headers));
        headers.insert(header::AUTHORIZATION, "Bearer s3cret".parse().unwrap());
        assert!(exposition.allows(&headers));
        assert!(Exposition::new(Registry::default(), None).allows(&HeaderMap::new()));
    }
}
