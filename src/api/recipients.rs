//! Per-recipient rights: opt-out, erasure and access (`/api/recipients/{id}/...`). Viewers may not
//! use any of them; erasure is for admins.

use super::auth::Caller;
use super::error::ApiError;
use crate::server::AppState;
use crate::store::{Erasure, RecipientExport};
use axum::Json;
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
    Ok(Json(app.store.recipient_export(id).await?))
}

fn valid_recipient(id: String) -> Result<String, ApiError> {
    let id = id.trim().to_string();
    if id.is_empty() || id.len() > 256 {
        return Err(ApiError::Invalid("a recipient id is 1 to 256 bytes".into()));
    }
    Ok(id)
}
