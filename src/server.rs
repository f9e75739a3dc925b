//! The HTTP application: shared state, the router, and serving on a bound listener until a
//! shutdown signal (so tests and `serve` start it the same way).

use crate::api;
use crate::app::AppState;
use crate::track;
use axum::Router;
use axum::extract::ConnectInfo;
use axum::extract::State;
use axum::http::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tower_service::Service;

/// The application's routes; with `dashboard_https` (plain HTTP beside `--https-listen`) the
/// dashboard's send browsers on to that HTTPS port.
pub fn router(state: Arc<AppState>, dashboard_https: Option<u16>) -> Router {
    let mut dashboard = crate::dashboard::router();
    if let Some(port) = dashboard_https {
        dashboard = dashboard.layer(axum::middleware::from_fn(move |req, next| {
            dashboard_to_https(port, req, next)
        }));
    }
    Router::new()
        .route("/o/{file}", get(track::pixel))
        .route("/c/{token}", get(track::click))
        .route("/conversions", post(track::conversion::post))
        .route("/v/{file}", get(track::conversion::pixel))
        .route(
            "/u/{token}",
            get(track::stop::ask).post(track::stop::confirm),
        )
        .route(track::domain_check::PATH, get(track::domain_check::answer))
        .route(
            crate::acme::CHALLENGE_PATH,
            get(track::acme_challenge::answer),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .nest("/api", api::router())
        .merge(dashboard)
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .with_state(state)
}

/// Most bytes of request line and headers; beyond it hyper answers 431. Mail clients and proxies
/// send well under 2 KiB.
pub const MAX_REQUEST_HEAD: usize = 32 * 1024;

/// Serves HTTP/1.1 until `shutdown` resolves, then stops accepting and waits (up to 30 s) for
/// requests in flight. A client that does not finish sending its request line and headers within
/// `header_timeout` is disconnected (slowloris).
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    serving: Serving,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state.clone(), serving.https_port);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(state.settings.header_timeout)
        .max_buf_size(MAX_REQUEST_HEAD)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small responses: send them now rather than waiting to coalesce.
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let service = service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let mut app = app.clone();
            async move { app.call(req).await }
        });
        match &serving.tls {
            None => {
                let conn = graceful.watch(http.serve_connection(TokioIo::new(tcp), service));
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!("connection from {peer}: {e}");
                    }
                });
            }
            Some(acceptor) => {
                let (acceptor, http, watcher) =
                    (acceptor.clone(), http.clone(), graceful.watcher());
                let limit = state.settings.header_timeout;
                tokio::spawn(async move {
                    // The handshake is bounded like the request head (slowloris).
                    let tls = match tokio::time::timeout(limit, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => {
                            tracing::debug!("TLS handshake with {peer} failed: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!("TLS handshake with {peer} timed out");
                            return;
                        }
                    };
                    // ACME's TLS-ALPN-01 validation: the handshake was all it needed.
                    if tls.get_ref().1.alpn_protocol() == Some(crate::acme::ACME_TLS) {
                        return;
                    }
                    let conn = watcher.watch(http.serve_connection(TokioIo::new(tls), service));
                    if let Err(e) = conn.await {
                        tracing::debug!("connection from {peer}: {e}");
                    }
                });
            }
        }
    }
    drop(listener);
    state.closing.send_replace(true);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(std::time::Duration::from_secs(30)) => {
            tracing::warn!("stopped waiting for open connections after 30 s");
        }
    }
    Ok(())
}

/// How a listener serves: TLS or plain, and for plain HTTP beside `--https-listen`, the HTTPS
/// port the dashboard is sent on to.
pub struct Serving {
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub https_port: Option<u16>,
}

/// Sends a browser asking plain HTTP for a dashboard page on to HTTPS (only the dashboard's routes
/// have this layer: the pixel, the click and the rest answer where mail and clients ask).
async fn dashboard_to_https(
    port: u16,
    req: Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(crate::domain::host_name);
    match host {
        Some(host) => {
            let host = if host.contains(':') {
                format!("[{host}]")
            } else {
                host
            };
            let port = if port == 443 {
                String::new()
            } else {
                format!(":{port}")
            };
            let rest = req.uri().path_and_query().map_or("/", |p| p.as_str());
            axum::response::Redirect::permanent(&format!("https://{host}{port}{rest}"))
                .into_response()
        }
        None => next.run(req).await,
    }
}

/// Ready when events can be journaled and stored; either way the journal's backlog is said, so
/// that a client can wait for the reports to hold what it was answered.
async fn readyz(State(app): State<Arc<AppState>>) -> Response {
    let journal = app.events.status();
    // The database may answer reads and still refuse writes (full disk, --max-database-mb,
    // read-only file): the store worker's last transaction tells.
    let state = match journal.problem() {
        Some(reason) => Err(reason),
        None => app.store.ping().await.map_err(|e| e.to_string()),
    };
    let backlog = serde_json::json!({
        "pending_events": journal.pending_events(),
        "pending_bytes": journal.pending_bytes(),
        "lag_seconds": journal.lag().as_secs_f64(),
    });
    let (status, mut body) = match state {
        Ok(()) => (
            StatusCode::OK,
            serde_json::json!({"status": "ready", "journal": backlog}),
        ),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "degraded", "reason": reason, "journal": backlog}),
        ),
    };
    // A certificate order that fails is reported, not a reason to stop taking events.
    if app.settings.acme.is_some() {
        body["certificates"] = match app.store.certificates().await {
            Ok(certs) => certs.iter().map(certificate_status).collect(),
            Err(e) => serde_json::json!({"error": e.to_string()}),
        };
    }
    (status, axum::Json(body)).into_response()
}

fn certificate_status(c: &crate::store::StoredCertificate) -> serde_json::Value {
    let issued = c.issued.as_ref();
    serde_json::json!({
        "domain": c.domain,
        "not_after": issued.map(|i| i.not_after),
        "renew_at": issued.map(|i| i.renew_at),
        "error": c.last_error,
        "retry_at": c.retry_at,
    })
}

async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    if app.settings.metrics_listen.is_some() {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    }
    render_metrics(&app)
}

/// `--metrics-listen`: a listener of its own that serves `/metrics` only.
pub fn metrics_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(app): State<Arc<AppState>>| async move { render_metrics(&app) }),
        )
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .with_state(state)
}

fn render_metrics(app: &AppState) -> Response {
    match &app.metrics {
        Some(handle) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], {
            app.events.status().publish();
            handle.render()
        })
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are not enabled\n").into_response(),
    }
}
