//! A JSON request body with a size limit of the endpoint's choosing and errors in the API's format.

use super::error::{ApiError, Invalid};
use crate::app::AppState;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// Most API bodies are a few hundred bytes.
pub const SMALL_BODY: usize = 1024 * 1024;
/// Message registration carries up to 10,000 recipients, each possibly with its own HTML.
pub const LARGE_BODY: usize = 32 * 1024 * 1024;

pub struct JsonBody<T, const LIMIT: usize = SMALL_BODY>(pub T);

impl<T, const LIMIT: usize> FromRequest<Arc<AppState>> for JsonBody<T, LIMIT>
where
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &Arc<AppState>) -> Result<Self, ApiError> {
        let bytes = read(req, app, LIMIT).await?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(json_error)
    }
}

/// A JSON body's bytes, checked as [`JsonBody`] checks them, for a handler that reads them in
/// its own way.
pub struct JsonBytes<const LIMIT: usize>(pub axum::body::Bytes);

impl<const LIMIT: usize> FromRequest<Arc<AppState>> for JsonBytes<LIMIT> {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &Arc<AppState>) -> Result<Self, ApiError> {
        read(req, app, LIMIT).await.map(JsonBytes)
    }
}

/// What a JSON parse error means for the client.
pub fn json_error(e: serde_json::Error) -> ApiError {
    match e.classify() {
        // Well-formed JSON of the wrong shape (a missing field, a string for a number): the
        // request is understood but cannot be used.
        serde_json::error::Category::Data => ApiError::Invalid(
            Invalid::Body,
            format!("the body does not fit this endpoint: {e}"),
        ),
        _ => ApiError::BadJson(format!("the body is not valid JSON: {e}")),
    }
}

async fn read(req: Request, app: &AppState, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if !(mime.eq_ignore_ascii_case("application/json") || mime.ends_with("+json")) {
        return Err(ApiError::UnsupportedMediaType(
            "send the body as JSON with Content-Type: application/json".into(),
        ));
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::BodyTooLarge(limit));
    }
    // A client that announces a body and sends it a byte at a time is cut off (slowloris).
    let timeout = app.settings.body_timeout;
    tokio::time::timeout(timeout, axum::body::to_bytes(req.into_body(), limit))
        .await
        .map_err(|_| ApiError::BodyTimeout(timeout.as_secs()))?
        .map_err(|_| ApiError::BodyTooLarge(limit))
}
