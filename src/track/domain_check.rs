//! `GET /.well-known/mailbeacon-domain-check`: what a tracking domain's check fetches under the
//! domain (`crate::tracking_domains::check`). The answer is a proof, made with the signing key,
//! that the name in the request's `Host` reaches a server of this installation, so a name that
//! points at another server (another mailbeacon included) fails the check.

use crate::app::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

pub const PATH: &str = "/.well-known/mailbeacon-domain-check";

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

/// A `Host` header's name: lower case, without port or trailing dot (`[::1]:8080` gives `::1`).
pub fn host_name(host: &str) -> String {
    let host = host.trim();
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_headers_give_their_names() {
        for (header, name) in [
            ("T.Example.com", "t.example.com"),
            ("t.example.com:8080", "t.example.com"),
            ("t.example.com.", "t.example.com"),
            ("[::1]:8443", "::1"),
            ("127.0.0.1:80", "127.0.0.1"),
        ] {
            assert_eq!(super::host_name(header), name, "{header}");
        }
    }
}
