//! Per-recipient rights: opt-out, erasure and access (`/api/recipients/{id}/...`), and the audit
//! log of who used them. Viewers may not use any of them; erasure and the audit log are for admins.

use super::auth::Caller;
use super::error::{ApiError, Invalid};
use crate::app::AppState;
use crate::domain::AuditAction;
use crate::domain::recipient_ref;
use crate::ingest::DECISION_WAIT;
use crate::store::{AuditEntry, ConsentRecord, Erasure, RecipientExport};
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
    caller
        .audit(&app, AuditAction::OptOut, &recipient_ref(&id))
        .await?;
    app.events.status().stored_so_far(DECISION_WAIT).await;
    let at = app.store.opt_out(id.clone(), "api".into()).await?;
    // Their hits from now on reach the journal without them (ingest/directory.rs).
    app.directory.forget_all();
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
        .audit(&app, AuditAction::EraseRecipient, &recipient_ref(&id))
        .await?;
    let removed = app.store.erase_recipient(id.clone()).await?;
    app.directory.forget_all();
    // Their hits' agents and addresses are in the journal's stored part until it is deleted.
    app.events.status().forget_stored();
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
        .audit(&app, AuditAction::ExportRecipient, &recipient_ref(&id))
        .await?;
    Ok(Json(app.store.recipient_export(id).await?))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentBody {
    /// How it was given: "signup form v3", "preference centre", an import's name.
    source: String,
    /// The wording agreed to, or a reference to it.
    text: Option<String>,
    /// When it was given; now when absent.
    given_at: Option<chrono::DateTime<chrono::FixedOffset>>,
}

/// `POST /api/recipients/{id}/consent`: records that the recipient agreed to individual
/// tracking (what `--require-consent` asks for), as proof: when, how, with what wording.
pub async fn record_consent(
    State(app): State<Arc<AppState>>,
    // The scope is checked before the body is read.
    super::auth::Writer(caller): super::auth::Writer,
    Path(id): Path<String>,
    super::json_body::JsonBody(body): super::json_body::JsonBody<ConsentBody>,
) -> Result<(axum::http::StatusCode, Json<ConsentRecord>), ApiError> {
    caller.require_recipient_data()?;
    let id = valid_recipient(id)?;
    let source = body.source.trim().to_string();
    if source.is_empty() || source.len() > 200 {
        return Err(ApiError::Invalid(
            Invalid::Consent,
            "source (how the consent was given) is 1 to 200 bytes".into(),
        ));
    }
    if body.text.as_ref().is_some_and(|t| t.len() > 10_000) {
        return Err(ApiError::Invalid(
            Invalid::Consent,
            "text is at most 10000 bytes (store a reference to longer wording)".into(),
        ));
    }
    let given_at = body
        .given_at
        .map_or_else(chrono::Utc::now, |t| t.with_timezone(&chrono::Utc));
    if given_at > chrono::Utc::now() + chrono::Duration::minutes(5) {
        return Err(ApiError::Invalid(
            Invalid::Consent,
            "given_at is in the future".into(),
        ));
    }
    caller
        .audit(&app, AuditAction::RecordConsent, &recipient_ref(&id))
        .await?;
    let record = app
        .store
        .record_consent(id, source, body.text, given_at)
        .await?;
    app.directory.forget_all();
    Ok((axum::http::StatusCode::CREATED, Json(record)))
}

#[derive(Serialize)]
pub struct Consents {
    recipient_id: String,
    /// A consent that is not withdrawn: individual tracking is allowed.
    standing: bool,
    consents: Vec<ConsentRecord>,
}

/// `GET /api/recipients/{id}/consent`: the recipient's consent records, withdrawn ones included.
pub async fn consents(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Consents>, ApiError> {
    caller.require_recipient_data()?;
    let id = valid_recipient(id)?;
    caller
        .audit(&app, AuditAction::ReadConsent, &recipient_ref(&id))
        .await?;
    let consents = app.store.consents(id.clone()).await?;
    Ok(Json(Consents {
        recipient_id: id,
        standing: consents.iter().any(|c| c.withdrawn_at.is_none()),
        consents,
    }))
}

#[derive(Serialize)]
pub struct Withdrawn {
    recipient_id: String,
    withdrawn: u64,
    /// With `--require-consent` and `--without-consent anonymous`: the recipient's messages made
    /// anonymous (renamed, their events' addresses and agent strings removed).
    anonymized_messages: u64,
}

/// `DELETE /api/recipients/{id}/consent`: withdraws the recipient's consent; from now on, with
/// `--require-consent`, their opens and clicks are answered but not stored, for mail sent before too.
pub async fn withdraw_consent(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Withdrawn>, ApiError> {
    caller.require_recipient_data()?;
    let id = valid_recipient(id)?;
    caller
        .audit(&app, AuditAction::WithdrawConsent, &recipient_ref(&id))
        .await?;
    let anonymize = app.settings.require_consent
        && app.settings.without_consent == crate::store::WithoutConsent::Anonymous;
    app.events.status().stored_so_far(DECISION_WAIT).await;
    let (withdrawn, anonymized_messages) =
        app.store.withdraw_consent(id.clone(), anonymize).await?;
    app.directory.forget_all();
    Ok(Json(Withdrawn {
        recipient_id: id,
        withdrawn,
        anonymized_messages,
    }))
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
                Invalid::Limit,
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
    let Query(params) = params.map_err(|e| ApiError::Invalid(Invalid::Query, e.body_text()))?;
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

pub(super) fn valid_recipient(id: String) -> Result<String, ApiError> {
    crate::domain::parse_recipient_id(&id).map_err(|reason| {
        ApiError::Invalid(Invalid::RecipientId, format!("the recipient id {reason}"))
    })
}
