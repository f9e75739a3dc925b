//! Every API failure, and the one place it becomes an HTTP status and a JSON body
//! `{"error": {"code": "...", "message": "..."}}`. Internal details are logged, never sent.

use crate::messages::RegisterError;
use crate::store::{CampaignId, StoreError};
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
    CampaignNotFound(CampaignId),
    #[error("no such endpoint")]
    NoRoute,
    #[error("webhook {0} does not exist")]
    WebhookNotFound(String),
    #[error("tracking domain {0} is not listed")]
    TrackingDomainNotFound(String),
    /// The request conflicts with what is stored (409).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadJson(String),
    #[error("the request body is larger than this endpoint accepts ({0} bytes)")]
    BodyTooLarge(usize),
    #[error("the request body did not arrive within {0} s")]
    BodyTimeout(u64),
    /// A value that cannot be used (422), with the kind of failure as its code.
    #[error("{1}")]
    Invalid(Invalid, String),
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

/// Why values cannot be used: each kind answers 422 with a code of its own, which clients may
/// rely on (the OpenAPI document and the README list them all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// The query string does not parse (an unknown or malformed parameter).
    Query,
    /// The body is JSON, but not what the route takes (a missing field, a wrong type).
    Body,
    Time,
    Window,
    Interval,
    Breakdown,
    Timezone,
    CampaignList,
    CampaignId,
    Name,
    Html,
    MissingHtml,
    NoMessages,
    AnswerTooLarge,
    RecipientId,
    Consent,
    Format,
    Accept,
    Cursor,
    Limit,
    State,
    Webhook,
    CrossSite,
    Segment,
    Subject,
    Tags,
    Utm,
    Conversion,
    Engagement,
    TrackingDomain,
}

impl Invalid {
    pub const ALL: [Invalid; 30] = [
        Invalid::Query,
        Invalid::Body,
        Invalid::Time,
        Invalid::Window,
        Invalid::Interval,
        Invalid::Breakdown,
        Invalid::Timezone,
        Invalid::CampaignList,
        Invalid::CampaignId,
        Invalid::Name,
        Invalid::Html,
        Invalid::MissingHtml,
        Invalid::NoMessages,
        Invalid::AnswerTooLarge,
        Invalid::RecipientId,
        Invalid::Consent,
        Invalid::Format,
        Invalid::Accept,
        Invalid::Cursor,
        Invalid::Limit,
        Invalid::State,
        Invalid::Webhook,
        Invalid::CrossSite,
        Invalid::Segment,
        Invalid::Subject,
        Invalid::Tags,
        Invalid::Utm,
        Invalid::Conversion,
        Invalid::Engagement,
        Invalid::TrackingDomain,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Invalid::Query => "invalid_query",
            Invalid::Body => "invalid_body",
            Invalid::Time => "invalid_time",
            Invalid::Window => "invalid_window",
            Invalid::Interval => "invalid_interval",
            Invalid::Breakdown => "unknown_breakdown",
            Invalid::Timezone => "invalid_timezone",
            Invalid::CampaignList => "invalid_campaign_list",
            Invalid::CampaignId => "invalid_campaign_id",
            Invalid::Name => "invalid_name",
            Invalid::Html => "invalid_html",
            Invalid::MissingHtml => "missing_html",
            Invalid::NoMessages => "no_messages",
            Invalid::AnswerTooLarge => "answer_too_large",
            Invalid::RecipientId => "invalid_recipient_id",
            Invalid::Consent => "invalid_consent",
            Invalid::Format => "unknown_format",
            Invalid::Accept => "not_acceptable",
            Invalid::Cursor => "invalid_cursor",
            Invalid::Limit => "invalid_limit",
            Invalid::State => "invalid_state",
            Invalid::Webhook => "invalid_webhook",
            Invalid::CrossSite => "cross_site_request",
            Invalid::Segment => "invalid_segment",
            Invalid::Subject => "invalid_subject",
            Invalid::Tags => "invalid_tags",
            Invalid::Utm => "invalid_utm",
            Invalid::Conversion => "invalid_conversion",
            Invalid::Engagement => "invalid_engagement",
            Invalid::TrackingDomain => "invalid_tracking_domain",
        }
    }
}

impl ApiError {
    /// Every code an error answer can carry.
    pub fn codes() -> Vec<&'static str> {
        let mut codes = vec![
            "missing_token",
            "invalid_token",
            "forbidden",
            "campaign_not_found",
            "not_found",
            "webhook_not_found",
            "tracking_domain_not_found",
            "conflict",
            "bad_json",
            "body_too_large",
            "body_timeout",
            "unsupported_media_type",
            "unavailable",
            "rate_limited",
            "internal",
        ];
        codes.extend(Invalid::ALL.map(Invalid::code));
        codes
    }

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
            ApiError::TrackingDomainNotFound(_) => {
                (StatusCode::NOT_FOUND, "tracking_domain_not_found")
            }
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::BadJson(_) => (StatusCode::BAD_REQUEST, "bad_json"),
            ApiError::BodyTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            ApiError::BodyTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "body_timeout"),
            ApiError::Invalid(kind, _) => (StatusCode::UNPROCESSABLE_ENTITY, kind.code()),
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
            RegisterError::BadRecipient { .. } => {
                ApiError::Invalid(Invalid::RecipientId, e.to_string())
            }
            RegisterError::Html { .. } => ApiError::Invalid(Invalid::Html, e.to_string()),
            RegisterError::TrackingDomain(why) => ApiError::Invalid(Invalid::TrackingDomain, why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_answered_and_listed_in_the_openapi_document_and_the_readme() {
        let answered = [
            ApiError::MissingToken,
            ApiError::InvalidToken,
            ApiError::Forbidden("viewer"),
            ApiError::CampaignNotFound(CampaignId(1)),
            ApiError::NoRoute,
            ApiError::WebhookNotFound("1".into()),
            ApiError::TrackingDomainNotFound("t.example.com".into()),
            ApiError::Conflict(String::new()),
            ApiError::BadJson(String::new()),
            ApiError::BodyTooLarge(1),
            ApiError::BodyTimeout(1),
            ApiError::UnsupportedMediaType(String::new()),
            ApiError::Unavailable,
            ApiError::RateLimited {
                per_second: 1,
                retry_after: 1,
            },
            ApiError::Internal(String::new()),
        ]
        .iter()
        .map(|e| e.status_and_code().1)
        .chain(Invalid::ALL.map(Invalid::code))
        .collect::<Vec<_>>();
        assert_eq!(answered, ApiError::codes());
        let doc: serde_json::Value = serde_json::from_str(crate::api::OPENAPI).unwrap();
        let listed = &doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]
            ["enum"];
        let listed: Vec<&str> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert_eq!(listed, answered, "the OpenAPI document's Error.code enum");
        let readme = include_str!("../README.md");
        for code in answered {
            assert!(
                readme.contains(&format!("`{code}`")),
                "{code} is not in the README"
            );
        }
    }
}
