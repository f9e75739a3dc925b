//! The HTTP application: shared state, the router, and serving on a bound listener until a
//! shutdown signal (so tests and `serve` start it the same way).

use crate::api;
use crate::classify::Classifier;
use crate::config::Resolved;
use crate::geo::Geo;
use crate::ingest::EventSender;
use crate::messages::Registrar;
use crate::store::Store;
use crate::token::KeyRing;
use crate::track;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use metrics_exporter_prometheus::PrometheusHandle;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// What every handler can reach. Built once at start-up; nothing in it changes while serving.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub keys: Arc<KeyRing>,
    pub events: EventSender,
    pub settings: Resolved,
    pub registrar: Registrar,
    pub classifier: Arc<Classifier>,
    pub geo: Option<Arc<Geo>>,
    pub metrics: Option<PrometheusHandle>,
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/o/{file}", get(track::pixel))
        .route("/c/{token}", get(track::click))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .nest("/api", api::router())
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .with_state(state)
}

/// Serves until `shutdown` completes, then lets requests in flight finish (each waits for its
/// event's commit) before returning.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = listener.tap_io(|tcp| {
        // Small responses: send them now rather than waiting to coalesce.
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

async fn readyz(State(app): State<Arc<AppState>>) -> Response {
    match app.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ready"})),
        )
            .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "degraded", "reason": e.to_string()})),
        )
            .into_response(),
    }
}

async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    match &app.metrics {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are not enabled\n").into_response(),
    }
}
