//! `GET /api/events?campaign=ID&after=CURSOR&limit=N`: the raw event log, oldest first, as JSON,
//! NDJSON (`Accept: application/x-ndjson`) or CSV (`Accept: text/csv`).
//!
//! The cursor is the id of the last event received; ids only grow, so paging with `after` never
//! skips or repeats an event. The next cursor is in the `Next-Cursor` header (and in the JSON body);
//! when a page comes back shorter than `limit`, the reader has caught up.

use super::auth::Caller;
use super::error::{ApiError, Invalid};
use super::format::{Format, negotiate};
use crate::app::AppState;
use crate::domain::AuditAction;
use crate::encode::{to_csv, to_ndjson};
use crate::store::{EventId, EventQuery, EventRecord};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub const DEFAULT_LIMIT: usize = 1000;
pub const MAX_LIMIT: usize = 10_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsParams {
    campaign: Option<String>,
    after: Option<String>,
    limit: Option<String>,
}

impl EventsParams {
    /// The cursor (`after`, 0 when absent or empty) and page size (`limit`) asked for.
    pub fn page(&self) -> Result<(i64, usize), ApiError> {
        page(self.after.as_deref(), self.limit.as_deref())
    }
}

/// A cursor (`after`: 0 when absent or empty) and a page size (`limit`: 1 to 10,000, default
/// 1,000), as the paged routes take them.
pub fn page(after: Option<&str>, limit: Option<&str>) -> Result<(i64, usize), ApiError> {
    let after = match after {
        None | Some("") => 0,
        Some(c) => c.parse::<i64>().ok().filter(|c| *c >= 0).ok_or_else(|| {
            ApiError::Invalid(
                Invalid::Cursor,
                format!("'{c}' is not a cursor from this API"),
            )
        })?,
    };
    let limit = match limit {
        None => DEFAULT_LIMIT,
        Some(l) => (l.parse::<usize>().ok())
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| {
                ApiError::Invalid(
                    Invalid::Limit,
                    format!("limit must be a number from 1 to {MAX_LIMIT}"),
                )
            })?,
    };
    Ok((after, limit))
}

#[derive(Serialize)]
struct EventsPage {
    events: Vec<EventRecord>,
    next_cursor: String,
}

fn no_parquet_pages() -> ApiError {
    ApiError::Invalid(
        Invalid::Accept,
        "the event log's pages are JSON, NDJSON or CSV; a campaign's events as Parquet: \
         /api/campaigns/{id}/events/export?format=parquet"
            .into(),
    )
}

pub async fn list(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    params: Result<Query<EventsParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require_recipient_data()?;
    let Query(params) = params.map_err(|e| ApiError::Invalid(Invalid::Query, e.body_text()))?;
    let format = negotiate(&headers, None)?;
    if format == Format::Parquet {
        return Err(no_parquet_pages());
    }
    let campaign = match params.campaign.as_deref() {
        Some(id) => Some(crate::app::existing_campaign(&app, id).await?.id),
        None => None,
    };
    let (after, limit) = params.page()?;
    let target = campaign.map_or("all campaigns".to_string(), |c| format!("campaign {c}"));
    caller.audit(&app, AuditAction::ReadEvents, &target).await?;
    let events = app
        .store
        .events(EventQuery {
            campaign,
            after: EventId(after),
            limit,
        })
        .await?;
    let next_cursor = events.last().map_or(after, |e| e.id.0).to_string();
    let mut response = match format {
        Format::Json => Json(EventsPage {
            events,
            next_cursor: next_cursor.clone(),
        })
        .into_response(),
        Format::Ndjson => {
            let body = to_ndjson(&events).map_err(|e| ApiError::Internal(e.to_string()))?;
            ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
        }
        Format::Csv => {
            let body = to_csv(&events).map_err(|e| ApiError::Internal(e.to_string()))?;
            ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response()
        }
        Format::Parquet => return Err(no_parquet_pages()),
    };
    response.headers_mut().insert(
        "next-cursor",
        HeaderValue::from_str(&next_cursor).expect("digits"),
    );
    super::format::pending_header(response.headers_mut(), app.events.status().pending_events());
    Ok(response)
}
