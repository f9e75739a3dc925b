//! Per-recipient rights: opt-out, erasure and access (`/api/recipients/{id}/...`), and the audit
//! log of who used them. Viewers may not use any of them; erasure and the audit log are for admins.

use super::auth::Caller;
use super::error::ApiError;
use crate::server::AppState;
use crate::store::{AuditEntry, Erasure, RecipientExport};
use axum::Json;
use axum::extract::Query;
use axum::extract::{Path, State};
use serde::Serialize;
use std::sync::Arc;

#[derive(Serialize)]
pub struct OptedOut {
    recipient_id: String,
    opted_out_at: chrono::DateTime<chrono::Utc>,
}

/// `POST /api/recipients/{id}/opt-out`: from now on this recipient's opens and clicks are
/// answered (the pixel loads, links redirect) but not stored. Repeating it changes nothing.
pub async fn opt_out(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<OptedOut>, ApiError> {
    caller.require_recipient_data()?;
    let id = valid_recipient(id)?;
    caller.audit(&app, "opt_out", &recipient_ref(&id)).await?;
    let at = app.store.opt_out(id.clone(), "api".into()).await?;
    Ok(Json(OptedOut {
        recipient_id: id,
        opted_out_at: at,
    }))
}

#[derive(Serialize)]
pub struct Erased {
    recipient_id: String,
    removed: Erasure,
}

/// `DELETE /api/recipients/{id}`: removes every message, link, event and opt-out record of the
/// recipient across campaigns, and says how many of each.
pub async fn erase(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Erased>, ApiError> {
    caller.require_admin()?;
    let id = valid_recipient(id)?;
    caller
        .audit(&app, "erase_recipient", &recipient_ref(&id))
        .await?;
    let removed = app.store.erase_recipient(id.clone()).await?;
    tracing::info!(
        "erased recipient data: {} messages, {} events",
        removed.messages,
        removed.events
    );
    Ok(Json(Erased {
        recipient_id: id,
        removed,
    }))
}

/// `GET /api/recipients/{id}/export`: everything stored about the recipient.
pub async fn export(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RecipientExport>, ApiError> {
    caller.require_recipient_data()?;
    let id = valid_recipient(id)?;
    caller
        .audit(&app, "export_recipient", &recipient_ref(&id))
        .await?;
    Ok(Json(app.store.recipient_export(id).await?))
}

#[derive(serde::Deserialize)]
pub struct AuditParams {
    after: Option<i64>,
    limit: Option<usize>,
}

impl AuditParams {
    /// The cursor (0 when absent) and page size (1 to 10,000, default 1,000) asked for.
    pub fn page(&self) -> Result<(i64, usize), ApiError> {
        let limit = self.limit.unwrap_or(1000);
        if !(1..=10_000).contains(&limit) {
            return Err(ApiError::Invalid(
                "limit must be a number from 1 to 10000".into(),
            ));
        }
        Ok((self.after.unwrap_or(0), limit))
    }
}

#[derive(Serialize)]
pub struct AuditPage {
    entries: Vec<AuditLine>,
    next_cursor: Option<String>,
}

#[derive(Serialize)]
pub struct AuditLine {
    id: i64,
    #[serde(flatten)]
    entry: AuditEntry,
}

/// `GET /api/audit?after=CURSOR&limit=N`: who read per-recipient data, opted out, erased or
/// exported, oldest first. Admins only.
pub async fn audit_log(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    params: Result<Query<AuditParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    caller.require_admin()?;
    let Query(params) = params.map_err(|e| ApiError::Invalid(e.body_text()))?;
    let (after, limit) = params.page()?;
    let rows = app.store.audit_log(after, limit).await?;
    let next_cursor = (rows.len() == limit)
        .then(|| rows.last().map(|(id, _)| id.to_string()))
        .flatten();
    Ok(Json(AuditPage {
        entries: rows
            .into_iter()
            .map(|(id, entry)| AuditLine { id, entry })
            .collect(),
        next_cursor,
    }))
}

/// How the audit log names a recipient: a SHA-256 prefix of the id, never the id itself, so that
/// erasing a recipient leaves nothing readable of them while "was X erased?" can still be
/// answered by hashing X.
pub fn recipient_ref(id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(id.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("recipient sha256:{hex}")
}

pub(super) fn valid_recipient(id: String) -> Result<String, ApiError> {
    let id = id.trim().to_string();
    if id.is_empty() || id.len() > 256 {
        return Err(ApiError::Invalid("a recipient id is 1 to 256 bytes".into()));
    }
    Ok(id)
}
