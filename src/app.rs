//! What every handler can reach: the state the HTTP routes share.

use crate::classify::Classifier;
use crate::config::Resolved;
use crate::error::{ApiError, Invalid};
use crate::geo::Geo;
use crate::ingest::EventSender;
use crate::ingest::directory::Directory;
use crate::messages::Registrar;
use crate::store::{Campaign, CampaignId, Store};
use crate::token::KeyRing;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;

/// What every handler can reach. Built once at start-up; nothing in it changes while serving.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub keys: Arc<KeyRing>,
    pub events: EventSender,
    /// Whether a tracked message exists and where its links lead, for the tracking handlers.
    pub directory: Arc<Directory>,
    pub settings: Resolved,
    pub registrar: Registrar,
    pub classifier: Arc<Classifier>,
    pub geo: Option<Arc<Geo>>,
    pub ip_salt: crate::client_addr::DailySalt,
    pub metrics: Option<PrometheusHandle>,
    /// Turns true when the server stops accepting: long-lived responses (the dashboard's live
    /// feed) end then, so shutdown does not wait for them.
    pub closing: tokio::sync::watch::Sender<bool>,
    /// Failed dashboard sign-ins per client address.
    pub sign_in: crate::limits::sign_in_limit::SignInLimiter,
    /// `--api-rate-limit`, per API token and per client address.
    pub api_limits: crate::limits::rate_limit::RateLimiter,
    /// Tells the webhook delivery worker that notices are waiting (after a replay).
    pub webhooks: crate::webhook_delivery::Wake,
    /// Set with `--tls-cert`: every connection is TLS.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

/// The campaign a path segment names, or the API's 404.
pub async fn existing_campaign(app: &AppState, id: &str) -> Result<Campaign, ApiError> {
    let id: CampaignId = id.parse().map_err(|_| {
        ApiError::Invalid(
            Invalid::CampaignId,
            format!("'{id}' is not a campaign id (a number)"),
        )
    })?;
    app.store
        .campaign(id)
        .await?
        .ok_or(ApiError::CampaignNotFound(id))
}
