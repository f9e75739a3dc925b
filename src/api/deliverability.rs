//! `GET /api/providers`: deliverability by mailbox provider over time, one row per checked
//! campaign and provider (aggregates: every scope). JSON, NDJSON or CSV.

use super::auth::Caller;
use super::error::{ApiError, Invalid};
use super::format::{self, negotiate};
use crate::app::AppState;
use crate::store::ProviderHistoryRow;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct HistoryParams {
    provider: Option<String>,
    limit: Option<String>,
    format: Option<String>,
}

#[derive(Serialize)]
struct History<'a> {
    checks: &'a [ProviderHistoryRow],
}

/// The newest checks first.
pub async fn history(
    State(app): State<Arc<AppState>>,
    _caller: Caller,
    headers: HeaderMap,
    q: Result<Query<HistoryParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::Invalid(Invalid::Query, e.body_text()))?;
    let format = negotiate(&headers, q.format.as_deref())?;
    let (_, limit) = super::events::page(None, q.limit.as_deref())?;
    let provider = q
        .provider
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty());
    let rows = app.store.provider_history(provider, limit).await?;
    format::report(format, "provider-history", History { checks: &rows }, &rows)
}
