//! A campaign's segments (`analytics::segments`) and its mailbox providers, both from the pages of
//! its messages: `GET /api/campaigns/{id}/segments` counts the segments and
//! `GET /api/campaigns/{id}/providers` the readers per provider (aggregates: every scope);
//! `GET /api/campaigns/{id}/segments/{segment}` lists a segment's recipients a page at a time
//! (per-recipient data: analysts and admins, audited). JSON, NDJSON or CSV.

use super::auth::Caller;
use super::error::{ApiError, Invalid};
use super::format::{self, Format, negotiate};
use crate::analytics::segments::{MessageActivity, Segment};
use crate::app::{AppState, existing_campaign};
use crate::domain::{AuditAction, MessageId};
use crate::reports::{
    SEGMENT_SCAN, provider_rows, segment_counts, segment_members, since_send_rows,
};
use crate::store::Campaign;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CountParams {
    format: Option<String>,
}

/// The campaign a table route names and the format asked for.
async fn table_of(
    app: &AppState,
    id: &str,
    headers: &HeaderMap,
    q: Result<Query<CountParams>, QueryRejection>,
) -> Result<(Campaign, Format), ApiError> {
    let q = q.map_err(|e| ApiError::Invalid(Invalid::Query, e.body_text()))?;
    let format = negotiate(headers, q.format.as_deref())?;
    Ok((existing_campaign(app, id).await?, format))
}

/// A campaign table as JSON, or its rows as CSV or NDJSON, with the journal's backlog.
fn answer<J: Serialize, R: Serialize + Default>(
    app: &AppState,
    format: Format,
    name: String,
    json: J,
    rows: &[R],
) -> Result<Response, ApiError> {
    let mut response = format::report(format, &name, json, rows)?;
    format::pending_header(response.headers_mut(), app.events.status().pending_events());
    Ok(response)
}

/// `GET /api/campaigns/{id}/segments`.
pub async fn counts(
    State(app): State<Arc<AppState>>,
    _caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: Result<Query<CountParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (campaign, format) = table_of(&app, &id, &headers, q).await?;
    let counts = segment_counts(&*app.store, campaign.id).await?;
    let name = format!("campaign-{}-segments", campaign.id);
    answer(&app, format, name, &counts, std::slice::from_ref(&counts))
}

/// `GET /api/campaigns/{id}/providers`: readers' open and click rates per mailbox provider.
pub async fn providers(
    State(app): State<Arc<AppState>>,
    _caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: Result<Query<CountParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (campaign, format) = table_of(&app, &id, &headers, q).await?;
    let rows = provider_rows(&*app.store, campaign.id).await?;
    let json = serde_json::json!({ "campaign_id": campaign.id, "providers": rows });
    answer(
        &app,
        format,
        format!("campaign-{}-providers", campaign.id),
        json,
        &rows,
    )
}

/// `GET /api/campaigns/{id}/since-send`: per hour after sending, the messages first read and
/// first clicked then.
pub async fn since_send(
    State(app): State<Arc<AppState>>,
    _caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: Result<Query<CountParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (campaign, format) = table_of(&app, &id, &headers, q).await?;
    let rows = since_send_rows(&*app.store, campaign.id).await?;
    let json = serde_json::json!({ "campaign_id": campaign.id, "hours": rows });
    answer(
        &app,
        format,
        format!("campaign-{}-since-send", campaign.id),
        json,
        &rows,
    )
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    after: Option<String>,
    limit: Option<String>,
    format: Option<String>,
}

#[derive(Serialize)]
struct SegmentPage<'a> {
    campaign_id: crate::domain::CampaignId,
    segment: &'static str,
    recipients: &'a [MessageActivity],
    /// Where the next page starts (`after`); `null` once every message was looked at.
    next_cursor: Option<String>,
}

/// `GET /api/campaigns/{id}/segments/{segment}?after=CURSOR&limit=N`.
pub async fn list(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    Path((id, segment)): Path<(String, String)>,
    headers: HeaderMap,
    q: Result<Query<ListParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require_recipient_data()?;
    let Query(q) = q.map_err(|e| ApiError::Invalid(Invalid::Query, e.body_text()))?;
    let format = negotiate(&headers, q.format.as_deref())?;
    let campaign = existing_campaign(&app, &id).await?;
    let segment = parse_segment(&segment)?;
    let (after, limit) = page_params(&q)?;
    caller
        .audit(
            &app,
            AuditAction::ReadSegment,
            &format!("campaign {} segment {}", campaign.id, segment.as_str()),
        )
        .await?;
    let (recipients, next) = segment_members(
        &*app.store,
        campaign.id,
        segment,
        after,
        limit,
        SEGMENT_SCAN,
    )
    .await?;
    let next_cursor = next.map(|id| id.to_string());
    let mut response = format::report(
        format,
        &format!("campaign-{}-{}", campaign.id, segment.as_str()),
        SegmentPage {
            campaign_id: campaign.id,
            segment: segment.as_str(),
            recipients: &recipients,
            next_cursor: next_cursor.clone(),
        },
        &recipients,
    )?;
    format::cursor_header(response.headers_mut(), next_cursor);
    Ok(response)
}

fn parse_segment(name: &str) -> Result<Segment, ApiError> {
    let names = || Segment::ALL.map(Segment::as_str).join(", ");
    match Segment::parse(name) {
        Some(s) if s.lists_recipients() => Ok(s),
        Some(_) => Err(ApiError::Invalid(
            Invalid::Segment,
            "untracked mail names no recipient (tracking level anonymous, or no consent): only \
             its count is kept, see GET /api/campaigns/{id}/segments"
                .into(),
        )),
        None => Err(ApiError::Invalid(
            Invalid::Segment,
            format!("'{name}' is not a segment; the segments are {}", names()),
        )),
    }
}

fn page_params(q: &ListParams) -> Result<(MessageId, usize), ApiError> {
    let (after, limit) = super::events::page(q.after.as_deref(), q.limit.as_deref())?;
    Ok((MessageId(after), limit))
}
