//! Tracking domains as the API, the dashboard and the CLI change them: the same checks, answers
//! and audit entries from each (only admins change them; anyone signed in lists them).

use crate::domain::{Actor, AuditAction, Scope, parse_tracking_domain};
use crate::error::{ApiError, Invalid};
use crate::store::{AuditEntry, DomainRemoval, Store, TrackingDomain};

/// Who asks for a change, as the audit log names them.
#[derive(Debug, Clone, Copy)]
pub struct Changer {
    pub actor: Actor,
    pub scope: Scope,
}

impl Changer {
    async fn audit(
        self,
        store: &dyn Store,
        action: AuditAction,
        target: String,
    ) -> Result<(), ApiError> {
        if self.scope != Scope::Admin {
            return Err(ApiError::Forbidden(self.scope.as_str()));
        }
        store
            .audit(AuditEntry {
                at: chrono::Utc::now(),
                actor: self.actor,
                scope: self.scope.as_str().into(),
                action,
                target,
            })
            .await?;
        Ok(())
    }
}

/// The name a request gives, as stored (lower case, no trailing dot).
fn name(domain: &str) -> String {
    domain.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Adds a host name (links use HTTPS) or a base URL.
pub async fn add(store: &dyn Store, by: Changer, input: &str) -> Result<TrackingDomain, ApiError> {
    if by.scope != Scope::Admin {
        return Err(ApiError::Forbidden(by.scope.as_str()));
    }
    let new = parse_tracking_domain(input)
        .map_err(|e| ApiError::Invalid(Invalid::TrackingDomain, format!("domain: {e}")))?;
    let domain = new.domain.clone();
    let added = store
        .add_tracking_domain(new)
        .await?
        .ok_or_else(|| ApiError::Conflict(format!("tracking domain {domain} is listed already")))?;
    by.audit(store, AuditAction::AddTrackingDomain, domain)
        .await?;
    Ok(added)
}

/// Retires a domain for new mail (`true`), or takes it back into use.
pub async fn retire(
    store: &dyn Store,
    by: Changer,
    domain: &str,
    retired: bool,
) -> Result<TrackingDomain, ApiError> {
    if by.scope != Scope::Admin {
        return Err(ApiError::Forbidden(by.scope.as_str()));
    }
    let domain = name(domain);
    let edited = store
        .retire_tracking_domain(domain.clone(), retired)
        .await?
        .ok_or_else(|| ApiError::TrackingDomainNotFound(domain.clone()))?;
    let what = if retired { "retired" } else { "in use" };
    by.audit(
        store,
        AuditAction::RetireTrackingDomain,
        format!("{domain} {what}"),
    )
    .await?;
    Ok(edited)
}

/// Removes a retired domain.
pub async fn remove(store: &dyn Store, by: Changer, domain: &str) -> Result<(), ApiError> {
    if by.scope != Scope::Admin {
        return Err(ApiError::Forbidden(by.scope.as_str()));
    }
    let domain = name(domain);
    match store.remove_tracking_domain(domain.clone()).await? {
        DomainRemoval::Removed => {
            by.audit(store, AuditAction::RemoveTrackingDomain, domain)
                .await
        }
        DomainRemoval::NotFound => Err(ApiError::TrackingDomainNotFound(domain)),
        DomainRemoval::NotRetired => Err(ApiError::Conflict(format!(
            "tracking domain {domain} is in use: retire it first, then remove it once no mail \
             under it needs answering"
        ))),
    }
}

/// One domain; 404 when it is not listed.
pub async fn existing(store: &dyn Store, domain: &str) -> Result<TrackingDomain, ApiError> {
    let domain = name(domain);
    store
        .tracking_domain(domain.clone())
        .await?
        .ok_or(ApiError::TrackingDomainNotFound(domain))
}

/// A tracking domain a campaign may name for new mail: listed and not retired.
pub async fn usable(store: &dyn Store, domain: &str) -> Result<String, ApiError> {
    let domain = name(domain);
    let invalid = |why: String| ApiError::Invalid(Invalid::TrackingDomain, why);
    match store.tracking_domain(domain.clone()).await? {
        None => Err(invalid(format!(
            "tracking_domain: {domain} is not listed (an admin adds it: POST /api/tracking-domains)"
        ))),
        Some(d) if d.retired_at.is_some() => Err(invalid(format!(
            "tracking_domain: {domain} is retired for new mail"
        ))),
        Some(d) => Ok(d.domain),
    }
}
