//! gust's HTTP API: the Airflow 3 public REST API (`/api/v2/…`) over the
//! state gust keeps in PostgreSQL, and the web UI (`ui`) on the same address.

mod audit;
pub mod auth;
pub mod error;
mod extract;
pub mod metrics;
mod openapi;
mod routes;
mod ui;

use std::{
    future::Future,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    extract::{DefaultBodyLimit, Request, State},
    http::{header, HeaderMap, StatusCode},
    middleware,
    response::{IntoResponse, Response},
    Router,
};
use deadpool_postgres::{Object, Pool};
use gust_shared::settings::{AuthSettings, WebapiSettings};
use tokio::sync::Mutex;
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    compression::CompressionLayer,
    limit::RequestBodyLimitLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::{DefaultOnResponse, TraceLayer},
};

pub use error::{ApiError, WebapiError};
use utoipa_scalar::Servable as _;

/// How long a request waits for a pooled database connection before answering 503.
const DB_WAIT: Duration = Duration::from_secs(10);

/// Age of the last heartbeat after which a scheduler or worker counts as unhealthy, unless set.
const DEFAULT_LIVENESS_THRESHOLD: Duration = Duration::from_secs(60);

/// Largest error body of an inner layer that is read to build a JSON error from it.
const MAX_REWRITTEN_ERROR_BYTES: usize = 16 * 1024;

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    /// Connection pool of the gust database.
    pub pool: Pool,
    /// Largest accepted request body, in bytes (`GUST__WEBAPI__MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
    /// A scheduler or worker whose last heartbeat is older than this is unhealthy (`GUST__SCHEDULER__ZOMBIE_THRESHOLD`).
    pub liveness_threshold: Duration,
    /// The broker the health check connects to (URLs and TLS files); `None` reports it as not configured.
    pub amqp: Option<gust_shared::settings::AmqpSettings>,
    /// The last broker check and when it ran, shared so health stays cheap under load.
    pub(crate) broker_health: Arc<Mutex<Option<(Instant, routes::BrokerHealth)>>>,
    /// Token keys and the failed-login limiter.
    pub auth: Arc<auth::Auth>,
    /// Keys that encrypt connection secrets (`GUST__SECRETS__KEY`); `None` refuses to store secrets.
    pub secrets: Option<Arc<gust_shared::secrets::Secrets>>,
    /// Request and login metrics, served at `/metrics`.
    pub metrics: metrics::Metrics,
    /// The settings the webapi started with (`GET /api/v2/config`, connection tests).
    pub settings: Arc<gust_shared::settings::Settings>,
}

impl AppState {
    /// State over `pool` with the default body limit and liveness threshold, no broker check,
    /// and a random token key of this process.
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            max_body_bytes: WebapiSettings::default().max_body_bytes,
            liveness_threshold: DEFAULT_LIVENESS_THRESHOLD,
            amqp: None,
            broker_health: Arc::default(),
            auth: Arc::new(auth::Auth::with_random_secret(AuthSettings::default().token_lifetime)),
            secrets: None,
            metrics: metrics::Metrics::new(None),
            settings: Arc::default(),
        }
    }

    /// The state the webapi serves with: body limit, liveness threshold, broker
    /// check, connection keys and token keys from `settings`.
    pub fn from_settings(
        pool: Pool,
        settings: &gust_shared::settings::Settings,
    ) -> Result<Self, gust_shared::settings::SettingsError> {
        Ok(AppState::new(pool)
            .with_max_body_bytes(settings.webapi.max_body_bytes)
            .with_liveness_threshold(settings.scheduler.zombie_threshold)
            .with_amqp(settings.amqp.clone())
            .with_secrets(settings.secrets.secrets()?)
            .with_auth(auth::Auth::from_settings(&settings.auth))
            .with_metrics_token(settings.metrics.token.clone())
            .with_settings(settings.clone()))
    }

    /// The same state with other settings for `GET /api/v2/config` and connection tests (nothing else reads them).
    pub fn with_settings(self, settings: gust_shared::settings::Settings) -> Self {
        Self { settings: Arc::new(settings), ..self }
    }

    /// The same state with fresh metrics whose `/metrics` needs `token` (`GUST__METRICS__TOKEN`) when set.
    pub fn with_metrics_token(self, token: Option<String>) -> Self {
        Self { metrics: metrics::Metrics::new(token), ..self }
    }

    /// The same state with keys that encrypt connection secrets.
    pub fn with_secrets(self, secrets: Option<gust_shared::secrets::Secrets>) -> Self {
        Self { secrets: secrets.map(Arc::new), ..self }
    }

    /// The same state with other token keys (from [`auth::Auth::from_settings`]).
    pub fn with_auth(self, auth: auth::Auth) -> Self {
        Self { auth: Arc::new(auth), ..self }
    }

    /// The same state with another body limit.
    pub fn with_max_body_bytes(self, max_body_bytes: usize) -> Self {
        Self { max_body_bytes, ..self }
    }

    /// The same state with another liveness threshold for schedulers and workers.
    pub fn with_liveness_threshold(self, liveness_threshold: Duration) -> Self {
        Self { liveness_threshold, ..self }
    }

    /// The same state with a broker for the health check to connect to.
    pub fn with_amqp(self, amqp: gust_shared::settings::AmqpSettings) -> Self {
        Self { amqp: Some(amqp), broker_health: Arc::default(), ..self }
    }

    /// [`AppState::with_amqp`] for a broker at `url` (one URL or a comma-separated list), without TLS files.
    pub fn with_amqp_url(self, url: impl Into<String>) -> Self {
        self.with_amqp(gust_shared::settings::AmqpSettings { url: url.into(), ..Default::default() })
    }

    /// A pooled connection, or a 503 when none comes in time.
    pub(crate) async fn db(&self) -> Result<Object, ApiError> {
        match tokio::time::timeout(DB_WAIT, self.pool.get()).await {
            Ok(client) => Ok(client?),
            Err(_) => Err(ApiError::Unavailable(format!(
                "no database connection became free within {}s; the metadata database is overloaded or unreachable",
                DB_WAIT.as_secs()
            ))),
        }
    }
}

/// The API's OpenAPI document, as `GET /openapi.json` serves it.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    routes_and_document().1
}

/// The routes and their finished OpenAPI document, made by the same `routes!` calls.
fn routes_and_document() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (api, mut document) = routes::api().split_for_parts();
    openapi::finish(&mut document);
    (api, document)
}

/// The whole HTTP API with its middleware: request ids, tracing, body limit, JSON errors, authentication.
pub fn router(state: AppState) -> Router {
    let max_body_bytes = state.max_body_bytes;
    let (api, document) = routes_and_document();
    // Serialized once: the document never changes while the process runs.
    let json = axum::body::Bytes::from(document.to_json().expect("the OpenAPI document serializes to JSON"));
    let docs: Router<AppState> = utoipa_scalar::Scalar::with_url("/docs", document).into();
    let serve_json = move || {
        let json = json.clone();
        async move { ([(header::CONTENT_TYPE, "application/json")], json) }
    };
    let api: Router = api
        .route("/openapi.json", axum::routing::get(serve_json))
        .merge(docs)
        .layer(middleware::from_fn_with_state(state.clone(), audit::record))
        .layer(middleware::from_fn_with_state(state.clone(), auth::authorize))
        .with_state(state.clone());
    let metrics = state.metrics.clone();
    let ui: Router = ui::router(api.clone()).with_state(state);
    api.merge(ui)
        .merge(metrics.exposition().router())
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(middleware::from_fn_with_state(metrics, metrics::track))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(RequestBodyLimitLayer::new(max_body_bytes))
        .layer(middleware::map_response_with_state(max_body_bytes, json_errors))
        .layer(CompressionLayer::new())
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(request_span)
                        .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
                )
                .layer(PropagateRequestIdLayer::x_request_id()),
        )
}

/// Serves the API on `listener` until `shutdown` completes, then drains open requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), WebapiError> {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "gust-webapi listening");
    }
    axum::serve(listener, router(state).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(WebapiError::Serve)
}

/// [`serve`] over HTTPS, with the PEM certificate and key at `cert` and `key`.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<(), WebapiError> {
    let tls_error =
        |cause| WebapiError::Tls { cert: cert.display().to_string(), key: key.display().to_string(), cause };
    let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key).await.map_err(tls_error)?;
    let listener = listener.into_std().map_err(WebapiError::Serve)?;
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "gust-webapi listening (HTTPS)");
    }
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(HTTPS_SHUTDOWN_GRACE));
    });
    axum_server::tls_rustls::from_tcp_rustls(listener, config)
        .map_err(WebapiError::Serve)?
        .handle(handle)
        .serve(router(state).into_make_service_with_connect_info::<SocketAddr>())
        .await
        .map_err(WebapiError::Serve)
}

/// How long open HTTPS requests may finish after shutdown was asked for.
const HTTPS_SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

fn request_span(request: &Request) -> tracing::Span {
    let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
    tracing::info_span!("request", method = %request.method(), uri = %request.uri(), request_id = %request_id)
}

fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = %message, "request handler panicked");
    ApiError::with_status(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal server error; the gust-webapi log has the details",
    )
    .into_response()
}

/// True when the headers declare a JSON body (`application/json` or `application/problem+json`).
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("application/problem+json"))
}

/// True when the headers declare an HTML body (a UI page).
fn is_html(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/html"))
}

/// Turns any error response an inner layer produced as plain text (body too
/// large, …) into the API's JSON error shape, keeping its status and headers;
/// a too-large body always gets a detail naming the limit and its setting.
async fn json_errors(State(max_body_bytes): State<usize>, response: Response) -> Response {
    let status = response.status();
    let rewrite = status == StatusCode::PAYLOAD_TOO_LARGE
        || ((status.is_client_error() || status.is_server_error())
            && !is_json(response.headers())
            && !is_html(response.headers()));
    if !rewrite {
        return response;
    }
    let (parts, body) = response.into_parts();
    let detail = if status == StatusCode::PAYLOAD_TOO_LARGE {
        format!("the request body is larger than the {max_body_bytes}-byte limit (GUST__WEBAPI__MAX_BODY_BYTES)")
    } else {
        let text = axum::body::to_bytes(body, MAX_REWRITTEN_ERROR_BYTES).await.unwrap_or_default();
        let text = String::from_utf8_lossy(&text).trim().to_string();
        if text.is_empty() {
            status.canonical_reason().unwrap_or("error").to_string()
        } else {
            text
        }
    };
    let mut json = ApiError::with_status(status, detail).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            json.headers_mut().append(name.clone(), value.clone());
        }
    }
    json
}
