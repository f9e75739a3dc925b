//! `/api/tracking-domains`: the sender's own domains mail links may use. Anyone with a token
//! lists them (to choose one for a campaign); admins add, retire and remove them, audited
//! (`crate::tracking_domains`, shared with the dashboard and the CLI).

use super::auth::{Admin, Caller};
use super::error::ApiError;
use super::json_body::JsonBody;
use crate::app::AppState;
use crate::store::TrackingDomain;
use crate::tracking_domains::{self as domains, Changer};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

fn changer(caller: Caller) -> Changer {
    Changer {
        actor: caller.actor(),
        scope: caller.scope,
    }
}

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
    let check = domains::Check::of(&app);
    let added = domains::add(app.store.as_ref(), changer(caller), check, &body.domain).await?;
    Ok((StatusCode::CREATED, Json(added)))
}

pub async fn get_one(
    State(app): State<Arc<AppState>>,
    _caller: Caller,
    Path(domain): Path<String>,
) -> Result<Json<TrackingDomain>, ApiError> {
    Ok(Json(domains::existing(app.store.as_ref(), &domain).await?))
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
    let store = app.store.as_ref();
    Ok(Json(
        domains::retire(store, changer(caller), &domain, body.retired).await?,
    ))
}

pub async fn remove(
    State(app): State<Arc<AppState>>,
    Admin(caller): Admin,
    Path(domain): Path<String>,
) -> Result<StatusCode, ApiError> {
    domains::remove(app.store.as_ref(), changer(caller), &domain).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/tracking-domains/{domain}/check`: the domain check, now.
pub async fn check(
    State(app): State<Arc<AppState>>,
    Admin(caller): Admin,
    Path(domain): Path<String>,
) -> Result<Json<TrackingDomain>, ApiError> {
    let (store, check) = (app.store.as_ref(), domains::Check::of(&app));
    Ok(Json(
        domains::check_now(store, changer(caller), check, &domain).await?,
    ))
}

/// `POST /api/tracking-domains/{domain}/renew`: a new certificate now, before it is due.
pub async fn renew(
    State(app): State<Arc<AppState>>,
    Admin(caller): Admin,
    Path(domain): Path<String>,
) -> Result<StatusCode, ApiError> {
    domains::renew_certificate(app.store.as_ref(), changer(caller), &domain).await?;
    Ok(StatusCode::ACCEPTED)
}
