//! `POST /api/campaigns/{id}/messages`: register and instrument one message or many.

use super::auth::Writer;
use super::campaigns::existing_campaign;
use super::error::ApiError;
use super::json_body::{JsonBody, LARGE_BODY};
use crate::messages::{MessageRequest, TrackingLevel};
use crate::server::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageBody {
    recipient_id: String,
    html: Option<String>,
    sent_at: Option<DateTime<FixedOffset>>,
    tracking: Option<TrackingLevel>,
}

#[derive(Serialize)]
pub struct MessageResponse {
    /// `null` when the message is not tracked (`tracking: none`): nothing was stored.
    message_id: Option<i64>,
    recipient_id: String,
    html: Option<String>,
    pixel_url: Option<String>,
    /// The level the message got: what was asked for, lowered by `--max-tracking-level` and,
    /// with `--require-consent`, to `anonymous` for a recipient without a standing consent.
    tracking: TrackingLevel,
}

#[derive(Serialize)]
pub struct MessagesResponse {
    messages: Vec<MessageResponse>,
}

/// Registrations of at least this many messages hand their memory back afterwards (src/memory.rs).
const BULK: usize = 100;

pub async fn create(
    State(app): State<Arc<AppState>>,
    _writer: Writer,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value, LARGE_BODY>,
) -> Result<(StatusCode, Json<MessagesResponse>), ApiError> {
    let campaign = existing_campaign(&app, &id).await?;
    let requests = parse_messages(body, app.settings.max_recipients_per_call)?;
    if campaign.template_html.is_none()
        && let Some(i) = requests.iter().position(|r| r.html.is_none())
    {
        return Err(ApiError::Invalid(format!(
            "message {i}: html is missing and campaign {} has no template html",
            campaign.id
        )));
    }
    let registered = app
        .registrar
        .register(&*app.store, &campaign, requests)
        .await?;
    let messages: Vec<MessageResponse> = registered
        .into_iter()
        .map(|m| MessageResponse {
            message_id: m.message_id,
            recipient_id: m.recipient_id,
            html: m.html,
            pixel_url: m.pixel_url,
            tracking: m.tracking,
        })
        .collect();
    if messages.len() >= BULK {
        crate::memory::release_soon();
    }
    Ok((StatusCode::CREATED, Json(MessagesResponse { messages })))
}

/// One object or an array of them, with errors that say which element is wrong.
pub fn parse_messages(body: Value, max: usize) -> Result<Vec<MessageRequest>, ApiError> {
    let items = match body {
        Value::Array(items) => items,
        one @ Value::Object(_) => vec![one],
        _ => {
            return Err(ApiError::BadJson(
                "the body must be a message object or an array of them".into(),
            ));
        }
    };
    if items.is_empty() {
        return Err(ApiError::Invalid("the array of messages is empty".into()));
    }
    if items.len() > max {
        return Err(ApiError::Invalid(format!(
            "{} messages in one call; at most {max} are accepted",
            items.len()
        )));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let m: MessageBody = serde_json::from_value(item)
                .map_err(|e| ApiError::Invalid(format!("message {i}: {e}")))?;
            Ok(MessageRequest {
                recipient_id: m.recipient_id,
                html: m.html,
                sent_at: m.sent_at.map(|t| t.with_timezone(&Utc)),
                tracking: m.tracking,
            })
        })
        .collect()
}
