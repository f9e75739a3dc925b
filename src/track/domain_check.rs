//! `GET /.well-known/mailbeacon-domain-check`: what a tracking domain's check fetches under the
//! domain (`crate::tracking_domains::check`). The answer is a proof, made with the signing key,
//! that the name in the request's `Host` reaches a server of this installation, so a name that
//! points at another server (another mailbeacon included) fails the check.

use crate::app::AppState;
use crate::domain::host_name;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

pub use crate::domain::DOMAIN_CHECK_PATH as PATH;

pub async fn answer(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let Some(host) = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(host_name)
    else {
        return (StatusCode::BAD_REQUEST, "no Host header\n").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        app.keys.domain_proof(&host),
    )
        .into_response()
}
