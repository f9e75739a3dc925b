//! `/api/webhooks`: endpoints that receive opens, clicks, opt-outs and erasures as they happen.
//! Admins only: a webhook sends per-recipient data out of mailbeacon. Every change is audited.

use super::auth::{Admin, Caller};
use super::error::{ApiError, Invalid};
use super::json_body::JsonBody;
use crate::app::AppState;
use crate::domain::AuditAction;
pub use crate::webhooks::registration::CreateWebhook;
use crate::webhooks::{DeliveryRecord, Protocol, Webhook};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Serialize)]
pub struct Created {
    #[serde(flatten)]
    webhook: Webhook,
    /// Shown once: receivers check signatures with it. A segment destination's write key is not
    /// echoed back.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

pub async fn create(
    State(app): State<Arc<AppState>>,
    Admin(caller): Admin,
    JsonBody(body): JsonBody<CreateWebhook>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let invalid = |e: String| ApiError::Invalid(Invalid::Webhook, e);
    let new = body
        .validate(app.settings.webhooks.allow_private)
        .map_err(invalid)?;
    if let Some(id) = new.campaign_id
        && app.store.campaign(id).await?.is_none()
    {
        return Err(invalid(format!(
            "campaign_id: campaign {id} does not exist"
        )));
    }
    let secret = (new.protocol == Protocol::StandardWebhooks).then(|| new.secret.clone());
    let webhook = app.store.create_webhook(new).await?;
    caller
        .audit(
            &app,
            AuditAction::CreateWebhook,
            &format!("webhook {}", webhook.id),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(Created { webhook, secret })))
}

#[derive(Serialize)]
pub struct WebhookList {
    webhooks: Vec<Webhook>,
}

pub async fn list(
    State(app): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<WebhookList>, ApiError> {
    caller.require_admin()?;
    Ok(Json(WebhookList {
        webhooks: app.store.webhooks().await?,
    }))
}

async fn existing(app: &AppState, id: &str) -> Result<Webhook, ApiError> {
    let not_found = || ApiError::WebhookNotFound(id.to_string());
    let id: i64 = id.parse().map_err(|_| not_found())?;
    app.store
        .webhooks()
        .await?
        .into_iter()
        .find(|w| w.id == id)
        .ok_or_else(not_found)
}

pub async fn get_one(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Webhook>, ApiError> {
    caller.require_admin()?;
    Ok(Json(existing(&app, &id).await?))
}

pub async fn remove(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let webhook = existing(&app, &id).await?;
    app.store.delete_webhook(webhook.id).await?;
    caller
        .audit(
            &app,
            AuditAction::DeleteWebhook,
            &format!("webhook {}", webhook.id),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
pub struct Replayed {
    replayed: u64,
}

/// `POST /api/webhooks/{id}/replay`: dead letters are sent again, from the first attempt.
pub async fn replay(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Replayed>, ApiError> {
    caller.require_admin()?;
    let webhook = existing(&app, &id).await?;
    let replayed = app.store.replay_webhooks(Some(webhook.id)).await?;
    caller
        .audit(
            &app,
            AuditAction::ReplayWebhook,
            &format!("webhook {}", webhook.id),
        )
        .await?;
    app.webhooks.wake();
    Ok(Json(Replayed { replayed }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesParams {
    state: Option<String>,
    after: Option<i64>,
    limit: Option<usize>,
}

#[derive(Serialize)]
pub struct DeliveryPage {
    deliveries: Vec<DeliveryRecord>,
    next_cursor: Option<String>,
}

/// `GET /api/webhooks/{id}/deliveries?state=dead`: the endpoint's undelivered notices with their
/// attempts and last error (no payloads).
pub async fn deliveries(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    params: Result<Query<DeliveriesParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<DeliveryPage>, ApiError> {
    caller.require_admin()?;
    let Query(params) = params.map_err(|e| ApiError::Invalid(Invalid::Query, e.body_text()))?;
    let webhook = existing(&app, &id).await?;
    if let Some(state) = &params.state
        && !matches!(state.as_str(), "pending" | "dead")
    {
        return Err(ApiError::Invalid(
            Invalid::State,
            "state: pending or dead (delivered notices are not kept, only counted)".into(),
        ));
    }
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::Invalid(
            Invalid::Limit,
            "limit: from 1 to 1000".into(),
        ));
    }
    let rows = app
        .store
        .webhook_deliveries(webhook.id, params.state, params.after.unwrap_or(0), limit)
        .await?;
    let next_cursor = (rows.len() == limit)
        .then(|| rows.last().map(|d| d.id.to_string()))
        .flatten();
    Ok(Json(DeliveryPage {
        deliveries: rows,
        next_cursor,
    }))
}
