//! Every API failure, and the one place it becomes an HTTP status and a JSON body
//! `{"error": {"code": "...", "message": "..."}}`. Internal details are logged, never sent.

use crate::messages::RegisterError;
use crate::store::StoreError;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("send an API token in the Authorization header: Bearer <token>")]
    MissingToken,
    #[error("the API token is not valid")]
    InvalidToken,
    #[error("this API token's scope ({0}) does not allow this")]
    Forbidden(&'static str),
    #[error("campaign {0} does not exist")]
    CampaignNotFound(i64),
    #[error("no such endpoint")]
    NoRoute,
    #[error("webhook {0} does not exist")]
    WebhookNotFound(String),
    #[error("{0}")]
    BadJson(String),
    #[error("the request body is larger than this endpoint accepts ({0} bytes)")]
    BodyTooLarge(usize),
    #[error("the request body did not arrive within {0} s")]
    BodyTimeout(u64),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the database is unavailable, try again shortly")]
    Unavailable,
    #[error(
        "too many requests: at most {per_second} a second are allowed here; try again in {retry_after} s"
    )]
    RateLimited { per_second: u32, retry_after: u64 },
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        self.status_and_code().0
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::MissingToken => (StatusCode::UNAUTHORIZED, "missing_token"),
            ApiError::InvalidToken => (StatusCode::UNAUTHORIZED, "invalid_token"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::CampaignNotFound(_) => (StatusCode::NOT_FOUND, "campaign_not_found"),
            ApiError::NoRoute => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::WebhookNotFound(_) => (StatusCode::NOT_FOUND, "webhook_not_found"),
            ApiError::BadJson(_) => (StatusCode::BAD_REQUEST, "bad_json"),
            ApiError::BodyTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            ApiError::BodyTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "body_timeout"),
            ApiError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        match &self {
            ApiError::Internal(detail) => tracing::error!("API request failed: {detail}"),
            ApiError::Unavailable => tracing::warn!("API request failed: database unavailable"),
            _ => {}
        }
        let body = serde_json::json!({"error": {"code": code, "message": self.to_string()}});
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let ApiError::RateLimited { retry_after, .. } = self
            && let Ok(v) = HeaderValue::from_str(&retry_after.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) | StoreError::Conflict(_) => ApiError::Unavailable,
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<RegisterError> for ApiError {
    fn from(e: RegisterError) -> Self {
        match e {
            RegisterError::Store(e) => e.into(),
            invalid => ApiError::Invalid(invalid.to_string()),
        }
    }
}
