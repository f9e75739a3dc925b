//! `/api/campaigns`: campaigns made, listed (with their headline rates), read, renamed,
//! tagged, archived and deleted.

use super::auth::{Caller, Writer};
use super::error::{ApiError, Invalid};
use super::json_body::JsonBody;
use crate::app::{AppState, existing_campaign};
use crate::campaigns::{
    self, UtmInput, valid_html, valid_name, valid_subject, valid_tags, valid_utm,
};
use crate::store::{
    Archived, Campaign, CampaignDeletion, CampaignEdit, ListedCampaign, NewCampaign,
};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCampaign {
    name: String,
    /// A template every message of the campaign uses when it brings no HTML of its own.
    html: Option<String>,
    subject: Option<String>,
    sent_at: Option<DateTime<FixedOffset>>,
    #[serde(default)]
    tags: Vec<String>,
    utm: Option<UtmInput>,
    /// Clicks carry a signed reference to their destination, for conversions.
    #[serde(default)]
    conversions: bool,
    /// A listed tracking domain its mail's links use (else the public URL).
    tracking_domain: Option<String>,
}

pub async fn create(
    State(app): State<Arc<AppState>>,
    _writer: Writer,
    JsonBody(body): JsonBody<CreateCampaign>,
) -> Result<(StatusCode, Json<Campaign>), ApiError> {
    let name = valid_name(&body.name)?;
    let html = body.html.map(valid_html).transpose()?;
    let store = app.store.as_ref();
    let tracking_domain =
        crate::tracking_domains::chosen(store, body.tracking_domain.as_deref()).await?;
    let campaign = app
        .store
        .create_campaign(NewCampaign {
            template_html: html,
            subject: body.subject.as_deref().map(valid_subject).transpose()?,
            sent_at: body.sent_at.map(|t| t.with_timezone(&Utc)),
            tags: valid_tags(&body.tags)?,
            utm: body.utm.map(|u| valid_utm(u, &name)).transpose()?.flatten(),
            conversions: body.conversions,
            tracking_domain,
            name,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(campaign)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// `exclude` (the default), `include` or `only`.
    archived: Option<String>,
    /// Only campaigns with this tag.
    tag: Option<String>,
}

#[derive(Serialize)]
pub struct CampaignList {
    campaigns: Vec<ListedCampaign>,
}

pub async fn list(
    State(app): State<Arc<AppState>>,
    _caller: Caller,
    q: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<CampaignList>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::Invalid(Invalid::Query, e.body_text()))?;
    let archived = match q.archived.as_deref() {
        None | Some("exclude") => Archived::Exclude,
        Some("include") => Archived::Include,
        Some("only") => Archived::Only,
        Some(other) => {
            return Err(ApiError::Invalid(
                Invalid::Query,
                format!("archived: '{other}' is not one of exclude, include, only"),
            ));
        }
    };
    let tag = q
        .tag
        .as_deref()
        .map(|t| crate::domain::parse_tag(t).map_err(|e| ApiError::Invalid(Invalid::Tags, e)))
        .transpose()?;
    let mut campaigns = app.store.campaigns(archived).await?;
    if let Some(tag) = tag {
        campaigns.retain(|c| c.campaign.tags.iter().any(|t| t == tag));
    }
    Ok(Json(CampaignList { campaigns }))
}

/// `GET /api/campaigns/{id}`.
pub async fn get_one(
    State(app): State<Arc<AppState>>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Campaign>, ApiError> {
    Ok(Json(existing_campaign(&app, &id).await?))
}

/// A field of a change: absent (left as it is), `null` (removed) or a value.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditCampaign {
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    html: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    subject: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    sent_at: Option<Option<DateTime<FixedOffset>>>,
    tags: Option<Vec<String>>,
    archived: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    utm: Option<Option<UtmInput>>,
    conversions: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    tracking_domain: Option<Option<String>>,
}

/// `PATCH /api/campaigns/{id}`: rename, change the subject, send time or tags, archive or bring
/// back; fields left out stay as they are.
pub async fn edit(
    State(app): State<Arc<AppState>>,
    _writer: Writer,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<EditCampaign>,
) -> Result<Json<Campaign>, ApiError> {
    let campaign = existing_campaign(&app, &id).await?;
    let tracking_domain = match &body.tracking_domain {
        Some(d) => Some(crate::tracking_domains::chosen(app.store.as_ref(), d.as_deref()).await?),
        None => None,
    };
    let edit = CampaignEdit {
        name: body.name.as_deref().map(valid_name).transpose()?,
        template_html: body
            .html
            .map(|h| h.map(valid_html).transpose())
            .transpose()?,
        subject: body
            .subject
            .map(|s| s.as_deref().map(valid_subject).transpose())
            .transpose()?,
        sent_at: body.sent_at.map(|t| t.map(|t| t.with_timezone(&Utc))),
        tags: body.tags.as_deref().map(valid_tags).transpose()?,
        archived: body.archived,
        utm: match body.utm {
            None => None,
            Some(None) => Some(None),
            Some(Some(u)) => {
                let name = body.name.as_deref().unwrap_or(&campaign.name);
                Some(valid_utm(u, name)?)
            }
        },
        conversions: body.conversions,
        tracking_domain,
    };
    app.store
        .edit_campaign(campaign.id, edit)
        .await?
        .map(Json)
        .ok_or(ApiError::CampaignNotFound(campaign.id))
}

#[derive(Serialize)]
pub struct Deleted {
    campaign_id: crate::domain::CampaignId,
    removed: CampaignDeletion,
}

/// `DELETE /api/campaigns/{id}`: the campaign and everything stored of it, as erasure removes a
/// recipient's (admins only, audited). Its pixels and links in mail already sent then answer 404.
pub async fn delete(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    caller.require_admin()?;
    let campaign = existing_campaign(&app, &id).await?;
    let removed = campaigns::delete(&app, caller.actor(), caller.scope, campaign.id).await?;
    Ok(Json(Deleted {
        campaign_id: campaign.id,
        removed,
    }))
}
