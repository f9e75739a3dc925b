//! `GET /.well-known/acme-challenge/{token}`: ACME's HTTP-01 validation of a name this
//! installation ordered a certificate for (`crate::acme`). The answer comes from the database, so
//! any process on it answers for an order another process placed.

use crate::app::AppState;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

pub async fn answer(State(app): State<Arc<AppState>>, Path(token): Path<String>) -> Response {
    match app.store.acme_challenge(token).await {
        Ok(Some(key_authorization)) => (
            [(header::CONTENT_TYPE, "application/octet-stream")],
            key_authorization,
        )
            .into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, "no such ACME challenge\n").into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
}
