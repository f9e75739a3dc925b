//! Send times: a recipient's best hour of the week (`GET /api/recipients/{id}/send-time`) and
//! those of a campaign's recipients a page at a time (`GET /api/campaigns/{id}/send-times`), for
//! a time zone. Per-recipient data: analysts and admins, audited. JSON, NDJSON or CSV.

use super::auth::Caller;
use super::error::{ApiError, Invalid};
use super::format::{self, negotiate};
use crate::analytics::send_time::SendTime;
use crate::app::{AppState, existing_campaign};
use crate::domain::{AuditAction, MessageId};
use crate::reports::{campaign_send_times, recipient_send_time};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct OneParams {
    tz: Option<String>,
    format: Option<String>,
}

/// `GET /api/recipients/{id}/send-time?tz=Europe/Berlin`.
pub async fn one(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: Result<Query<OneParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require_recipient_data()?;
    let Query(q) = q.map_err(|e| ApiError::Invalid(Invalid::Query, e.body_text()))?;
    let format = negotiate(&headers, q.format.as_deref())?;
    let zone = super::reports::zone(q.tz.as_deref())?;
    let id = super::recipients::valid_recipient(id)?;
    caller
        .audit(&app, AuditAction::ReadSendTimes, &super::recipient_ref(&id))
        .await?;
    let best = recipient_send_time(&*app.store, id, zone).await?;
    format::report(
        format,
        "recipient-send-time",
        &best,
        std::slice::from_ref(&best),
    )
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    tz: Option<String>,
    after: Option<String>,
    limit: Option<String>,
    format: Option<String>,
}

#[derive(Serialize)]
struct SendTimePage<'a> {
    campaign_id: crate::domain::CampaignId,
    recipients: &'a [SendTime],
    /// Where the next page starts (`after`); `null` once every message was looked at.
    next_cursor: Option<String>,
}

/// `GET /api/campaigns/{id}/send-times?tz=&after=CURSOR&limit=N`: the best hour of each
/// recipient of the campaign's messages (each from every message of theirs, in every campaign).
pub async fn campaign(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: Result<Query<PageParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require_recipient_data()?;
    let Query(q) = q.map_err(|e| ApiError::Invalid(Invalid::Query, e.body_text()))?;
    let format = negotiate(&headers, q.format.as_deref())?;
    let zone = super::reports::zone(q.tz.as_deref())?;
    let campaign = existing_campaign(&app, &id).await?;
    let (after, limit) = super::events::page(q.after.as_deref(), q.limit.as_deref())?;
    caller
        .audit(
            &app,
            AuditAction::ReadSendTimes,
            &format!("campaign {}", campaign.id),
        )
        .await?;
    let (rows, next) =
        campaign_send_times(&*app.store, campaign.id, MessageId(after), limit, zone).await?;
    let next_cursor = next.map(|id| id.to_string());
    let mut response = format::report(
        format,
        &format!("campaign-{}-send-times", campaign.id),
        SendTimePage {
            campaign_id: campaign.id,
            recipients: &rows,
            next_cursor: next_cursor.clone(),
        },
        &rows,
    )?;
    format::cursor_header(response.headers_mut(), next_cursor);
    Ok(response)
}
