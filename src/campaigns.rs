//! Campaign upkeep shared by the API, the dashboard and the CLI: the checks a change passes, and deletion
//! with what must follow it in this process (the audit entry first, then the directory and the
//! journal's stored part forgotten, as after a recipient's erasure).

use crate::app::AppState;
use crate::domain::{Actor, AuditAction, CampaignId, Scope, Utm};
use crate::error::{ApiError, Invalid};
use crate::store::{AuditEntry, CampaignDeletion};

pub fn valid_name(name: &str) -> Result<String, ApiError> {
    crate::domain::parse_campaign_name(name)
        .map(str::to_string)
        .map_err(|e| ApiError::Invalid(Invalid::Name, e))
}

/// A campaign's UTM parameters as the API takes them: `true` (the defaults: `mailbeacon`,
/// `email`, the campaign's name), `false`, or an object naming any of them.
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
pub enum UtmInput {
    On(bool),
    Given(UtmFields),
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UtmFields {
    source: Option<String>,
    medium: Option<String>,
    campaign: Option<String>,
}

/// The parameters `input` asks for, for the campaign named `name`.
pub fn valid_utm(input: UtmInput, name: &str) -> Result<Option<Utm>, ApiError> {
    let defaults = Utm::for_campaign(name);
    let utm = match input {
        UtmInput::On(false) => return Ok(None),
        UtmInput::On(true) => defaults,
        UtmInput::Given(f) => Utm {
            source: f.source.unwrap_or(defaults.source),
            medium: f.medium.unwrap_or(defaults.medium),
            campaign: f.campaign.unwrap_or(defaults.campaign),
        },
    };
    utm.checked()
        .map(Some)
        .map_err(|e| ApiError::Invalid(Invalid::Utm, e))
}

pub fn valid_html(html: String) -> Result<String, ApiError> {
    crate::instrument::check_html(&html)
        .map_err(|e| ApiError::Invalid(Invalid::Html, format!("html: {e}")))?;
    Ok(html)
}

pub fn valid_subject(subject: &str) -> Result<String, ApiError> {
    crate::domain::parse_subject(subject)
        .map(str::to_string)
        .map_err(|e| ApiError::Invalid(Invalid::Subject, e))
}

pub fn valid_tags<S: AsRef<str>>(tags: &[S]) -> Result<Vec<String>, ApiError> {
    crate::domain::parse_tags(tags).map_err(|e| ApiError::Invalid(Invalid::Tags, e))
}

/// Deletes campaign `id` for `actor`: audited before anything is removed (admins only).
pub async fn delete(
    app: &AppState,
    actor: Actor,
    scope: Scope,
    id: CampaignId,
) -> Result<CampaignDeletion, ApiError> {
    if scope != Scope::Admin {
        return Err(ApiError::Forbidden(scope.as_str()));
    }
    app.store
        .audit(AuditEntry {
            at: chrono::Utc::now(),
            actor,
            scope: scope.as_str().into(),
            action: AuditAction::DeleteCampaign,
            target: format!("campaign {id}"),
        })
        .await?;
    let removed = app
        .store
        .delete_campaign(id)
        .await?
        .ok_or(ApiError::CampaignNotFound(id))?;
    // Its messages' pixels and links answer 404 from now on; their hits' agents and addresses
    // are in the journal's stored part until it is deleted.
    app.directory.forget_all();
    app.events.status().forget_stored();
    tracing::info!(
        "deleted campaign {id}: {} messages, {} events",
        removed.messages,
        removed.events
    );
    Ok(removed)
}
