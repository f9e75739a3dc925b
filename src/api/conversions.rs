//! `GET /api/campaigns/{id}/conversions`: the conversions reported for a campaign's clicks, a
//! page at a time, as JSON, NDJSON or CSV (per-recipient data: analysts and admins, audited).

use super::auth::Caller;
use super::error::{ApiError, Invalid};
use super::format::{self, negotiate};
use crate::app::{AppState, existing_campaign};
use crate::domain::AuditAction;
use crate::store::ConversionRecord;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    after: Option<String>,
    limit: Option<String>,
    format: Option<String>,
}

#[derive(Serialize)]
struct ConversionPage<'a> {
    campaign_id: crate::domain::CampaignId,
    conversions: &'a [ConversionRecord],
    /// Where the next page starts (`after`); `null` on the last page.
    next_cursor: Option<String>,
}

pub async fn list(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: Result<Query<PageParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require_recipient_data()?;
    let Query(q) = q.map_err(|e| ApiError::Invalid(Invalid::Query, e.body_text()))?;
    let format = negotiate(&headers, q.format.as_deref())?;
    let campaign = existing_campaign(&app, &id).await?;
    let (after, limit) = super::events::page(q.after.as_deref(), q.limit.as_deref())?;
    caller
        .audit(
            &app,
            AuditAction::ReadConversions,
            &format!("campaign {}", campaign.id),
        )
        .await?;
    let rows = app.store.conversion_page(campaign.id, after, limit).await?;
    let next_cursor = (rows.len() == limit)
        .then(|| rows.last().map(|r| r.id.to_string()))
        .flatten();
    let mut response = format::report(
        format,
        &format!("campaign-{}-conversions", campaign.id),
        ConversionPage {
            campaign_id: campaign.id,
            conversions: &rows,
            next_cursor: next_cursor.clone(),
        },
        &rows,
    )?;
    format::cursor_header(response.headers_mut(), next_cursor);
    Ok(response)
}
