//! The webapi's Prometheus metrics, served at `GET /metrics` on the API's
//! address. Their names and labels are a contract (docs/metrics.md). A
//! request's `route` is the pattern axum matched (`/api/v2/dags/{dag_id}`),
//! never the raw path, so a label's values stay as few as the routes.

use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request, State},
    http::Method,
    middleware::Next,
    response::Response,
};
use gust_shared::metrics::{seconds_family, Exposition, SecondsFamily};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};

/// The `route` of a request no route matched (a 404 or a 405 fallback).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// `route`, `method` and `status` of a request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The matched route pattern, or [`UNMATCHED_ROUTE`].
    pub route: String,
    /// The HTTP method; methods outside the standard ones are `other`.
    pub method: &'static str,
    /// The response's status code.
    pub status: u16,
}

/// `route` and `method` of a request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The matched route pattern, or [`UNMATCHED_ROUTE`].
    pub route: String,
    /// The HTTP method.
    pub method: &'static str,
}

/// Every metric the webapi exports, and their exposition.
#[derive(Debug, Clone)]
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    durations: SecondsFamily<RouteLabels>,
    /// `gust_logins_failed_total`.
    pub logins_failed: Counter,
    exposition: Exposition,
}

impl Metrics {
    /// Fresh metrics, served with `token` (`GUST__METRICS__TOKEN`) when one is set.
    pub fn new(token: Option<String>) -> Metrics {
        let requests = Family::default();
        let durations = seconds_family();
        let logins_failed = Counter::default();
        let mut r = Registry::default();
        r.register(
            "gust_http_requests",
            "HTTP requests answered, by route pattern, method and status",
            requests.clone(),
        );
        r.register(
            "gust_http_request_duration_seconds",
            "Time to answer an HTTP request, by route pattern and method",
            durations.clone(),
        );
        r.register(
            "gust_logins_failed",
            "Logins refused for a wrong username or password (API and UI)",
            logins_failed.clone(),
        );
        Metrics { requests, durations, logins_failed, exposition: Exposition::new(r, token) }
    }

    /// `GET /metrics`, outside the API's authentication (it has its own optional token).
    pub fn exposition(&self) -> Exposition {
        self.exposition.clone()
    }
}

fn method_label(method: &Method) -> &'static str {
    [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE, Method::HEAD, Method::OPTIONS]
        .into_iter()
        .zip(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
        .find_map(|(known, label)| (known == method).then_some(label))
        .unwrap_or("other")
}

/// Middleware (added with `Router::layer`, so the matched route is known) that counts and times every request.
pub async fn track(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED_ROUTE.to_string(), |path| path.as_str().to_string());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    metrics.durations.get_or_create(&RouteLabels { route: route.clone(), method }).observe(seconds);
    metrics.requests.get_or_create(&RequestLabels { route, method, status }).inc();
    response
}
