//! The ops server of the scheduler and the worker: `GET /healthz` (live) and
//! `GET /readyz` (ready) for Kubernetes probes, and `GET /metrics` for
//! Prometheus ([`crate::metrics`]), on `GUST__METRICS__BIND` or
//! `GUST__HEALTH__BIND` (one server; off when both are empty). Its loops feed
//! a [`Health`] where they already run: the scheduler's sweep, the worker's
//! heartbeat task and broker session loop.

use std::{
    fmt::Display,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use axum::{extract::State, http::StatusCode, routing::get, Json, Router};
use serde::Serialize;
use tokio::task::JoinHandle;

use crate::metrics::Exposition;

/// Ticks a loop may miss before it counts as stuck (live) or the database as silent (ready).
pub const MISSED_TICKS: u32 = 3;

/// Why the ops server could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {bind} for the ops server (GUST__METRICS__BIND or GUST__HEALTH__BIND): {source}; choose a free port")]
pub struct OpsServerError {
    /// The address it was told to listen on.
    pub bind: String,
    /// What the OS said.
    pub source: std::io::Error,
}

/// Whether a component needs RabbitMQ to be ready, and whether it has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Broker {
    /// Not part of readiness (the scheduler).
    NotNeeded,
    /// Needed; connected when `true`.
    Needed(bool),
}

/// What the loops last reported.
#[derive(Debug, Clone)]
struct Signals {
    /// When the main loop last went round (creation counts as the first round).
    last_tick: Instant,
    /// When the database last answered.
    database_answered: Option<Instant>,
    /// The last database error, for the reason.
    database_error: Option<String>,
    /// The broker's part in readiness.
    broker: Broker,
}

/// Liveness and readiness of one process, updated by its loops and read by the ops server.
#[derive(Debug, Clone)]
pub struct Health {
    component: &'static str,
    /// How long the loop may stay silent: its interval × [`MISSED_TICKS`].
    stale_after: Duration,
    signals: Arc<Mutex<Signals>>,
}

/// A probe's answer: `Ok` or why not.
pub type Verdict = Result<(), String>;

impl Health {
    /// The health of `component`, whose main loop ticks every `interval`.
    pub fn new(component: &'static str, interval: Duration) -> Health {
        let signals = Signals {
            last_tick: Instant::now(),
            database_answered: None,
            database_error: None,
            broker: Broker::NotNeeded,
        };
        Health { component, stale_after: interval.saturating_mul(MISSED_TICKS), signals: Arc::new(Mutex::new(signals)) }
    }

    /// The same, ready only while connected to RabbitMQ (see [`Health::broker`]).
    pub fn needing_broker(self) -> Health {
        self.update(|s| s.broker = Broker::Needed(false));
        self
    }

    /// The main loop went round.
    pub fn tick(&self) {
        self.update(|s| s.last_tick = Instant::now());
    }

    /// The database answered (`Ok`) or failed (`Err`, kept as the reason).
    pub fn database<T, E: Display>(&self, result: &Result<T, E>) {
        let now = Instant::now();
        self.update(|s| match result {
            Ok(_) => {
                s.database_answered = Some(now);
                s.database_error = None;
            }
            Err(e) => s.database_error = Some(e.to_string()),
        });
    }

    /// The broker session is up (`true`) or lost (`false`).
    pub fn broker(&self, connected: bool) {
        self.update(|s| {
            if s.broker != Broker::NotNeeded {
                s.broker = Broker::Needed(connected);
            }
        });
    }

    /// `GET /healthz`: the main loop went round within the last [`MISSED_TICKS`] intervals.
    pub fn liveness(&self) -> Verdict {
        liveness(&self.snapshot(), self.stale_after, Instant::now())
    }

    /// `GET /readyz`: live, the database answered recently and, if needed, the broker is connected.
    pub fn readiness(&self) -> Verdict {
        readiness(&self.snapshot(), self.stale_after, Instant::now())
    }

    fn snapshot(&self) -> Signals {
        self.signals.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn update(&self, change: impl FnOnce(&mut Signals)) {
        change(&mut self.signals.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

fn liveness(signals: &Signals, stale_after: Duration, now: Instant) -> Verdict {
    let silent = now.saturating_duration_since(signals.last_tick);
    if silent > stale_after {
        return Err(format!(
            "main loop has not gone round for {}s (limit {}s)",
            silent.as_secs(),
            stale_after.as_secs()
        ));
    }
    Ok(())
}

fn readiness(signals: &Signals, stale_after: Duration, now: Instant) -> Verdict {
    liveness(signals, stale_after, now)?;
    let cause = signals.database_error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
    match signals.database_answered {
        None => return Err(format!("the database has not answered yet{cause}")),
        Some(at) if now.saturating_duration_since(at) > stale_after => {
            let silent = now.saturating_duration_since(at).as_secs();
            return Err(format!("the database has not answered for {silent}s{cause}"));
        }
        Some(_) => {}
    }
    if signals.broker == Broker::Needed(false) {
        return Err("not connected to RabbitMQ".into());
    }
    Ok(())
}

/// The body of both probes.
#[derive(Debug, Serialize)]
struct ProbeBody {
    status: &'static str,
    component: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

fn answer(component: &'static str, verdict: Verdict) -> (StatusCode, Json<ProbeBody>) {
    match verdict {
        Ok(()) => (StatusCode::OK, Json(ProbeBody { status: "ok", component, reason: None })),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(ProbeBody { status: "unavailable", component, reason: Some(reason) }),
        ),
    }
}

/// The ops server's routes: `/healthz` and `/readyz`.
pub fn router(health: Health) -> Router {
    Router::new()
        .route("/healthz", get(|State(h): State<Health>| async move { answer(h.component, h.liveness()) }))
        .route("/readyz", get(|State(h): State<Health>| async move { answer(h.component, h.readiness()) }))
        .with_state(health)
}

/// A running ops server; dropping it stops it.
#[derive(Debug)]
pub struct OpsServer {
    address: SocketAddr,
    task: JoinHandle<()>,
}

impl OpsServer {
    /// Listens on `bind` and serves [`router`] and `metrics`' `/metrics`; `None` when `bind` is empty (off).
    pub async fn start(bind: &str, health: Health, metrics: Exposition) -> Result<Option<OpsServer>, OpsServerError> {
        if bind.is_empty() {
            return Ok(None);
        }
        let error = |source| OpsServerError { bind: bind.to_string(), source };
        let listener = tokio::net::TcpListener::bind(bind).await.map_err(error)?;
        let address = listener.local_addr().map_err(error)?;
        tracing::info!(%address, component = health.component, "ops server listening (/metrics, /healthz, /readyz)");
        let routes = router(health).merge(metrics.router());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, routes).await {
                tracing::error!(error = %e, "ops server stopped");
            }
        });
        Ok(Some(OpsServer { address, task }))
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for OpsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALE: Duration = Duration::from_secs(15);

    fn signals(start: Instant) -> Signals {
        Signals { last_tick: start, database_answered: Some(start), database_error: None, broker: Broker::NotNeeded }
    }

    #[test]
    fn a_loop_that_ticked_within_the_limit_is_live_and_one_silent_longer_is_not() {
        let start = Instant::now();
        assert_eq!(liveness(&signals(start), STALE, start + STALE), Ok(()));
        let reason = liveness(&signals(start), STALE, start + STALE + Duration::from_secs(1)).unwrap_err();
        assert!(reason.contains("has not gone round for 16s"), "{reason}");
    }

    #[test]
    fn readiness_needs_a_recent_database_answer_and_names_the_last_error() {
        let start = Instant::now();
        let mut s = signals(start);
        assert_eq!(readiness(&s, STALE, start + Duration::from_secs(1)), Ok(()));
        s.database_error = Some("connection refused".into());
        s.last_tick = start + Duration::from_secs(20);
        let reason = readiness(&s, STALE, start + Duration::from_secs(20)).unwrap_err();
        assert_eq!(reason, "the database has not answered for 20s: connection refused");
        s.database_answered = None;
        let reason = readiness(&s, STALE, start + Duration::from_secs(20)).unwrap_err();
        assert!(reason.starts_with("the database has not answered yet"), "{reason}");
    }

    #[test]
    fn a_component_needing_the_broker_is_ready_only_while_connected() {
        let start = Instant::now();
        let mut s = signals(start);
        s.broker = Broker::Needed(false);
        assert_eq!(readiness(&s, STALE, start), Err("not connected to RabbitMQ".into()));
        s.broker = Broker::Needed(true);
        assert_eq!(readiness(&s, STALE, start), Ok(()));
    }

    #[test]
    fn a_stuck_loop_is_not_ready_either() {
        let start = Instant::now();
        let reason = readiness(&signals(start), STALE, start + STALE * 2).unwrap_err();
        assert!(reason.starts_with("main loop"), "{reason}");
    }

    #[test]
    fn reports_update_the_verdicts_and_the_broker_matters_only_when_needed() {
        let health = Health::new("worker", Duration::from_secs(5));
        assert!(health.readiness().unwrap_err().contains("not answered yet"));
        health.database(&Ok::<(), String>(()));
        health.broker(false);
        assert_eq!(health.readiness(), Ok(()), "the broker is not part of this component's readiness");
        let health = health.needing_broker();
        assert_eq!(health.readiness(), Err("not connected to RabbitMQ".into()));
        health.broker(true);
        health.tick();
        assert_eq!((health.liveness(), health.readiness()), (Ok(()), Ok(())));
    }

    #[tokio::test]
    async fn an_empty_bind_starts_no_server_and_a_taken_one_names_the_setting() {
        let health = Health::new("scheduler", Duration::from_secs(5));
        let metrics = || Exposition::new(Default::default(), None);
        assert!(OpsServer::start("", health.clone(), metrics()).await.unwrap().is_none());
        let server = OpsServer::start("127.0.0.1:0", health.clone(), metrics()).await.unwrap().unwrap();
        let taken = server.address().to_string();
        let err = OpsServer::start(&taken, health, metrics()).await.unwrap_err().to_string();
        assert!(err.contains("GUST__HEALTH__BIND") && err.contains(&taken), "{err}");
    }
}
