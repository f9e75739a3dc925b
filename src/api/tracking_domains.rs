//! `/api/tracking-domains`: the sender's own domains mail links may use. Anyone with a token
//! lists them (to choose one for a campaign); admins add, retire and remove them, audited.

use super::auth::{Admin, Caller};
use super::error::{ApiError, Invalid};
use super::json_body::JsonBody;
use crate::app::AppState;
use crate::domain::{AuditAction, parse_tracking_domain};
use crate::store::{DomainRemoval, TrackingDomain};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Serialize)]
pub struct DomainList {
    tracking_domains: Vec<TrackingDomain>,
}

pub async fn list(
    State(app): State<Arc<AppState>>,
    _caller: Caller,
) -> Result<Json<DomainList>, ApiError> {
    Ok(Json(DomainList {
        tracking_domains: app.store.tracking_domains().await?,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddDomain {
    /// A host name (`t.brand.example`: links use HTTPS) or a base URL.
    domain: String,
}

pub async fn add(
    State(app): State<Arc<AppState>>,
    Admin(caller): Admin,
    JsonBody(body): JsonBody<AddDomain>,
) -> Result<(StatusCode, Json<TrackingDomain>), ApiError> {
    let new = parse_tracking_domain(&body.domain)
        .map_err(|e| ApiError::Invalid(Invalid::TrackingDomain, format!("domain: {e}")))?;
    let name = new.domain.clone();
    let added =
        app.store.add_tracking_domain(new).await?.ok_or_else(|| {
            ApiError::Conflict(format!("tracking domain {name} is listed already"))
        })?;
    caller
        .audit(&app, AuditAction::AddTrackingDomain, &added.domain)
        .await?;
    Ok((StatusCode::CREATED, Json(added)))
}

pub async fn get_one(
    State(app): State<Arc<AppState>>,
    _caller: Caller,
    Path(domain): Path<String>,
) -> Result<Json<TrackingDomain>, ApiError> {
    let domain = domain.to_ascii_lowercase();
    app.store
        .tracking_domain(domain.clone())
        .await?
        .map(Json)
        .ok_or(ApiError::TrackingDomainNotFound(domain))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditDomain {
    /// `true`: no new mail uses it (mail sent keeps working); `false`: in use again.
    retired: bool,
}

pub async fn edit(
    State(app): State<Arc<AppState>>,
    Admin(caller): Admin,
    Path(domain): Path<String>,
    JsonBody(body): JsonBody<EditDomain>,
) -> Result<Json<TrackingDomain>, ApiError> {
    let domain = domain.to_ascii_lowercase();
    let edited = app
        .store
        .retire_tracking_domain(domain.clone(), body.retired)
        .await?
        .ok_or(ApiError::TrackingDomainNotFound(domain))?;
    let what = if body.retired { "retired" } else { "in use" };
    caller
        .audit(
            &app,
            AuditAction::RetireTrackingDomain,
            &format!("{} {what}", edited.domain),
        )
        .await?;
    Ok(Json(edited))
}

pub async fn remove(
    State(app): State<Arc<AppState>>,
    Admin(caller): Admin,
    Path(domain): Path<String>,
) -> Result<StatusCode, ApiError> {
    let domain = domain.to_ascii_lowercase();
    match app.store.remove_tracking_domain(domain.clone()).await? {
        DomainRemoval::Removed => {
            caller
                .audit(&app, AuditAction::RemoveTrackingDomain, &domain)
                .await?;
            Ok(StatusCode::NO_CONTENT)
        }
        DomainRemoval::NotFound => Err(ApiError::TrackingDomainNotFound(domain)),
        DomainRemoval::NotRetired => Err(ApiError::Conflict(format!(
            "tracking domain {domain} is in use: retire it first (PATCH with {{\"retired\": true}}), \
             then remove it once no mail under it needs answering"
        ))),
    }
}
