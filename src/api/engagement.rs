//! Per-recipient engagement (`GET /api/recipients/{id}/engagement`) and every recipient's, a page
//! at a time (`GET /api/engagement`): engaged-in-N-days and sunset lists that never count machine
//! opens. Per-recipient data: analysts and admins, audited. JSON, NDJSON or CSV.

use super::auth::Caller;
use super::error::{ApiError, Invalid};
use super::format::{self, negotiate};
use crate::analytics::engagement::{
    DEFAULT_DAYS, DEFAULT_RECENT, Engagement, MAX_DAYS, MAX_RECENT,
};
use crate::app::AppState;
use crate::domain::AuditAction;
use crate::reports::{engagement_page, recipient_engagement};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct OneParams {
    recent: Option<String>,
    days: Option<String>,
    format: Option<String>,
}

/// `recent` and `days`, checked.
fn window(recent: Option<&str>, days: Option<&str>) -> Result<(usize, i64), ApiError> {
    let recent = match recent {
        None => DEFAULT_RECENT,
        Some(r) => r
            .parse()
            .ok()
            .filter(|r| (1..=MAX_RECENT).contains(r))
            .ok_or_else(|| {
                ApiError::Invalid(
                    Invalid::Engagement,
                    format!(
                        "recent must be a number of messages from 1 to {MAX_RECENT}, not '{r}'"
                    ),
                )
            })?,
    };
    let days = match days {
        None => DEFAULT_DAYS,
        Some(d) => d
            .parse()
            .ok()
            .filter(|d| (1..=MAX_DAYS).contains(d))
            .ok_or_else(|| {
                ApiError::Invalid(
                    Invalid::Engagement,
                    format!("days must be a number from 1 to {MAX_DAYS}, not '{d}'"),
                )
            })?,
    };
    Ok((recent, days))
}

/// `GET /api/recipients/{id}/engagement?recent=5&days=90`.
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
    let (recent, days) = window(q.recent.as_deref(), q.days.as_deref())?;
    let id = super::recipients::valid_recipient(id)?;
    caller
        .audit(
            &app,
            AuditAction::ReadEngagement,
            &super::recipient_ref(&id),
        )
        .await?;
    let row = recipient_engagement(&*app.store, id, recent, days).await?;
    format::report(
        format,
        "recipient-engagement",
        &row,
        std::slice::from_ref(&row),
    )
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    recent: Option<String>,
    days: Option<String>,
    engaged: Option<String>,
    after: Option<String>,
    limit: Option<String>,
    format: Option<String>,
}

#[derive(Serialize)]
struct EngagementPage<'a> {
    recipients: &'a [Engagement],
    /// Where the next page starts (`after`); `null` once every recipient was looked at.
    next_cursor: Option<String>,
}

/// `GET /api/engagement?recent=&days=&engaged=true|false&after=CURSOR&limit=N`.
pub async fn list(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    q: Result<Query<PageParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require_recipient_data()?;
    let Query(q) = q.map_err(|e| ApiError::Invalid(Invalid::Query, e.body_text()))?;
    let format = negotiate(&headers, q.format.as_deref())?;
    let window = window(q.recent.as_deref(), q.days.as_deref())?;
    let only = match q.engaged.as_deref() {
        None | Some("") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            return Err(ApiError::Invalid(
                Invalid::Engagement,
                format!("engaged is true or false, not '{other}'"),
            ));
        }
    };
    let (_, limit) = super::events::page(None, q.limit.as_deref())?;
    let after = q.after.unwrap_or_default();
    caller
        .audit(&app, AuditAction::ReadEngagement, "every recipient")
        .await?;
    let (rows, next_cursor) = engagement_page(&*app.store, after, limit, window, only).await?;
    let mut response = format::report(
        format,
        "engagement",
        EngagementPage {
            recipients: &rows,
            next_cursor: next_cursor.clone(),
        },
        &rows,
    )?;
    format::cursor_header(response.headers_mut(), next_cursor);
    Ok(response)
}
