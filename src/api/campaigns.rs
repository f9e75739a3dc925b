//! `POST /api/campaigns`, `GET /api/campaigns`.

use super::auth::{Caller, Writer};
use super::error::{ApiError, Invalid};
use super::json_body::JsonBody;
use crate::app::AppState;
use crate::store::{Campaign, CampaignId};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

const MAX_NAME_LEN: usize = 200;

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
    let name = name.trim();
    if name.is_empty() {
        return Err(ApiError::Invalid(
            Invalid::Name,
            "name must not be empty".into(),
        ));
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(ApiError::Invalid(
            Invalid::Name,
            format!("name must be at most {MAX_NAME_LEN} characters"),
        ));
    }
    Ok(name)
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
