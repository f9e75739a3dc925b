//! `POST /api/campaigns/{id}/messages`: register and instrument one message or many.

use super::auth::Writer;
use super::error::{ApiError, Invalid};
use super::json_body::{JsonBytes, LARGE_BODY, json_error};
use crate::app::AppState;
use crate::app::existing_campaign;
use crate::domain::MessageId;
use crate::messages::{MessageRequest, TrackingLevel};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, FixedOffset, Utc};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
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
    message_id: Option<MessageId>,
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
    JsonBytes(body): JsonBytes<LARGE_BODY>,
) -> Result<(StatusCode, Json<MessagesResponse>), ApiError> {
    let campaign = existing_campaign(&app, &id).await?;
    let requests = parse_messages(&body, app.settings.max_recipients_per_call)?;
    if campaign.template_html.is_none()
        && let Some(i) = requests.iter().position(|r| r.html.is_none())
    {
        return Err(ApiError::Invalid(
            Invalid::MissingHtml,
            format!(
                "message {i}: html is missing and campaign {} has no template html",
                campaign.id
            ),
        ));
    }
    check_answer_size(&requests, campaign.template_html.as_deref())?;
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

/// The most an answer may hold: each message's instrumented HTML comes back in it, so a large
/// template times many recipients would otherwise be built in memory whole.
const MAX_ANSWER_BYTES: usize = 64 << 20;

/// Refuses, before anything is built, a call whose answer would pass [`MAX_ANSWER_BYTES`].
fn check_answer_size(requests: &[MessageRequest], template: Option<&str>) -> Result<(), ApiError> {
    // Instrumenting adds a pixel and longer click URLs: about a kilobyte per message and link.
    let each = |html: &str| html.len() + html.len() / 8 + 1024;
    let template = template.map_or(0, each);
    let total: usize = requests
        .iter()
        .map(|r| r.html.as_deref().map_or(template, each))
        .sum();
    if total <= MAX_ANSWER_BYTES {
        return Ok(());
    }
    let fits = (MAX_ANSWER_BYTES / (total / requests.len()).max(1)).max(1);
    Err(ApiError::Invalid(
        Invalid::AnswerTooLarge,
        format!(
            "the instrumented messages would take about {} MB in one answer, more than the {} MB \
         allowed: register at most about {fits} of these messages per call",
            total >> 20,
            MAX_ANSWER_BYTES >> 20
        ),
    ))
}

/// One object or an array of them, with errors that say which element is wrong. Read straight
/// into messages (a generic JSON value of a 32 MiB body would take several times that), and
/// refused as soon as the array holds more than `max`.
pub fn parse_messages(body: &[u8], max: usize) -> Result<Vec<MessageRequest>, ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if !matches!(first, Some(b'{' | b'[')) {
        return Err(ApiError::BadJson(
            "the body must be a message object or an array of them".into(),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let messages = Messages { max }
        .deserialize(&mut de)
        .and_then(|m| de.end().map(|()| m))
        .map_err(json_error)?;
    if messages.is_empty() {
        return Err(ApiError::Invalid(
            Invalid::NoMessages,
            "the array of messages is empty".into(),
        ));
    }
    Ok(messages
        .into_iter()
        .map(|m| MessageRequest {
            recipient_id: m.recipient_id,
            html: m.html,
            sent_at: m.sent_at.map(|t| t.with_timezone(&Utc)),
            tracking: m.tracking,
        })
        .collect())
}

/// Reads one message object, or an array of at most `max`.
struct Messages {
    max: usize,
}

impl<'de> DeserializeSeed<'de> for Messages {
    type Value = Vec<MessageBody>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Messages {
    type Value = Vec<MessageBody>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a message object or an array of them")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        MessageBody::deserialize(de::value::MapAccessDeserializer::new(map)).map(|m| vec![m])
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.max));
        loop {
            let i = out.len();
            let next = seq
                .next_element::<MessageBody>()
                .map_err(|e| de::Error::custom(format!("message {i}: {e}")))?;
            let Some(m) = next else { return Ok(out) };
            if i == self.max {
                return Err(de::Error::custom(format!(
                    "more than {} messages in one call; at most {} are accepted",
                    self.max, self.max
                )));
            }
            out.push(m);
        }
    }
}
