//! `POST /api/campaigns`, `GET /api/campaigns`.

use super::auth::{Caller, Writer};
use super::error::{ApiError, Invalid};
use super::json_body::JsonBody;
use crate::app::AppState;
use crate::store::Campaign;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCampaign {
    name: String,
    /// A template every message of the campaign uses when it brings no HTML of its own.
    html: Option<String>,
}

pub async fn create(
    State(app): State<Arc<AppState>>,
    _writer: Writer,
    JsonBody(body): JsonBody<CreateCampaign>,
) -> Result<(StatusCode, Json<Campaign>), ApiError> {
    let name = valid_name(&body.name)?;
    if let Some(html) = &body.html {
        crate::instrument::check_html(html)
            .map_err(|e| ApiError::Invalid(Invalid::Html, format!("html: {e}")))?;
    }
    let campaign = app
        .store
        .create_campaign(name, body.html.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(campaign)))
}

pub fn valid_name(name: &str) -> Result<&str, ApiError> {
    crate::domain::parse_campaign_name(name).map_err(|e| ApiError::Invalid(Invalid::Name, e))
}

#[derive(Serialize)]
pub struct CampaignList {
    campaigns: Vec<Campaign>,
}

pub async fn list(
    State(app): State<Arc<AppState>>,
    _caller: Caller,
) -> Result<Json<CampaignList>, ApiError> {
    Ok(Json(CampaignList {
        campaigns: app.store.campaigns().await?,
    }))
}
