//! `/api/webhooks`: endpoints that receive opens, clicks, opt-outs and erasures as they happen.
//! Admins only: a webhook sends per-recipient data out of mailbeacon. Every change is audited.

use super::auth::{Admin, Caller};
use super::error::{ApiError, Invalid};
use super::json_body::JsonBody;
use crate::app::AppState;
use crate::store::{CampaignId, Store};
use crate::webhooks::{
    self, DeliveryRecord, MAX_BATCH_SIZE, MAX_RATE_LIMIT, NewWebhook, NoticeKind, Webhook,
    destination, signature,
};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    pub url: String,
    /// open, click, opt_out, erasure (default: all four).
    pub kinds: Option<Vec<String>>,
    /// Class names, or `readers` (default: every class).
    pub classes: Option<Vec<String>>,
    pub campaign_id: Option<CampaignId>,
    /// Only the first reader open / click of each message.
    #[serde(default)]
    pub first_only: bool,
    pub batch_size: Option<u32>,
    pub rate_limit: Option<u32>,
    pub description: Option<String>,
    /// A `whsec_` secret of the caller's; one is generated when left out.
    pub secret: Option<String>,
}

impl CreateWebhook {
    /// Checks every field and says which one is wrong. Shared by the API and the CLI.
    pub async fn validate(
        self,
        store: &dyn Store,
        allow_private: bool,
    ) -> Result<NewWebhook, String> {
        let url = destination::check_url(&self.url, allow_private)?;
        let kinds = match self.kinds {
            None => NoticeKind::ALL.to_vec(),
            Some(list) => {
                let mut kinds = Vec::new();
                for k in list.iter().flat_map(|s| s.split([',', ' '])) {
                    let k = k.trim();
                    if k.is_empty() {
                        continue;
                    }
                    let kind = NoticeKind::parse(k).ok_or_else(|| {
                        format!("kinds: unknown kind '{k}': use open, click, opt_out or erasure")
                    })?;
                    if !kinds.contains(&kind) {
                        kinds.push(kind);
                    }
                }
                if kinds.is_empty() {
                    return Err("kinds: name at least one of open, click, opt_out, erasure".into());
                }
                kinds
            }
        };
        let classes = match self.classes {
            None => None,
            Some(list) => {
                Some(webhooks::parse_class_list(&list).map_err(|e| format!("classes: {e}"))?)
            }
        };
        if let Some(id) = self.campaign_id
            && store
                .campaign(id)
                .await
                .map_err(|e| e.to_string())?
                .is_none()
        {
            return Err(format!("campaign_id: campaign {id} does not exist"));
        }
        let batch_size = self.batch_size.unwrap_or(1);
        if !(1..=MAX_BATCH_SIZE).contains(&batch_size) {
            return Err(format!("batch_size: from 1 to {MAX_BATCH_SIZE}"));
        }
        let rate_limit = self.rate_limit.unwrap_or(10);
        if !(1..=MAX_RATE_LIMIT).contains(&rate_limit) {
            return Err(format!(
                "rate_limit: requests a second, from 1 to {MAX_RATE_LIMIT}"
            ));
        }
        let secret = match self.secret {
            Some(s) => {
                signature::parse_secret(&s).map_err(|e| format!("secret: {e}"))?;
                s
            }
            None => webhooks::generate_secret(),
        };
        let description = self.description.map(|d| d.trim().to_string());
        if description
            .as_ref()
            .is_some_and(|d| d.chars().count() > 200)
        {
            return Err("description: at most 200 characters".into());
        }
        Ok(NewWebhook {
            url,
            secret,
            kinds,
            classes,
            campaign_id: self.campaign_id,
            first_only: self.first_only,
            batch_size,
            rate_limit,
            description,
        })
    }
}

#[derive(Serialize)]
pub struct Created {
    #[serde(flatten)]
    webhook: Webhook,
    /// Shown once: receivers check signatures with it.
    secret: String,
}

pub async fn create(
    State(app): State<Arc<AppState>>,
    Admin(caller): Admin,
    JsonBody(body): JsonBody<CreateWebhook>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let new = body
        .validate(&*app.store, app.settings.webhooks.allow_private)
        .await
        .map_err(|e| ApiError::Invalid(Invalid::Webhook, e))?;
    let secret = new.secret.clone();
    let webhook = app.store.create_webhook(new).await?;
    caller
        .audit(&app, "create_webhook", &format!("webhook {}", webhook.id))
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
        .audit(&app, "delete_webhook", &format!("webhook {}", webhook.id))
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
        .audit(&app, "replay_webhook", &format!("webhook {}", webhook.id))
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
