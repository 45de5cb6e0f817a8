//! The operations HTTP server: `GET /metrics` (Prometheus text format), `GET /health/live` (the
//! process answers) and `GET /health/ready` (200 when partitions are assigned and restored, else
//! 503: Kubernetes then takes the pod out of the Service and a rolling update waits for it).
//!
//! The readiness answer comes from a closure so this module needs nothing of the runtime: the
//! service passes `move || status.ready.load(Ordering::SeqCst)`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use super::{Metrics, TEXT_CONTENT_TYPE};

/// Whether the service is ready to take traffic.
pub type ReadyFn = Arc<dyn Fn() -> bool + Send + Sync>;

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    ready: ReadyFn,
}

/// The routes, for embedding in another server or for tests.
pub fn router(metrics: Arc<Metrics>, ready: ReadyFn) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .route("/health/live", get(live))
        .route("/health/ready", get(readiness))
        .with_state(AppState { metrics, ready })
}

/// Binds `addr` and serves until `shutdown` completes (in-flight requests finish first).
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    ready: ReadyFn,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    serve_listener(listener, metrics, ready, shutdown).await
}

/// As [`serve`], on a listener already bound (tests bind port 0 and read the address).
pub async fn serve_listener(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    ready: ReadyFn,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(a) = listener.local_addr() {
        tracing::info!(addr = %a, "metrics and health endpoints listening");
    }
    axum::serve(listener, router(metrics, ready))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn scrape(State(s): State<AppState>) -> Response {
    s.metrics.set_ready((s.ready)());
    // Gathering walks every series: cheap next to a scrape interval, but keep it off the async
    // worker in case the registry grows.
    let m = Arc::clone(&s.metrics);
    match tokio::task::spawn_blocking(move || m.render()).await {
        Ok(body) => ([(header::CONTENT_TYPE, TEXT_CONTENT_TYPE)], body).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn live() -> &'static str {
    "live\n"
}

async fn readiness(State(s): State<AppState>) -> Response {
    if (s.ready)() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}
