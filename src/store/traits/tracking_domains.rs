//! The tracking domains an admin manages: added, retired for new mail, removed.

use super::super::*;

/// What removing a tracking domain did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainRemoval {
    Removed,
    NotFound,
    /// Only a retired domain is removed: mail may still be going out under one in use.
    NotRetired,
}

#[async_trait]
pub trait TrackingDomains: Send + Sync {
    /// In the order of their names.
    async fn tracking_domains(&self) -> StoreResult<Vec<TrackingDomain>>;

    async fn tracking_domain(&self, domain: String) -> StoreResult<Option<TrackingDomain>>;

    /// `None` when the domain is there already.
    async fn add_tracking_domain(
        &self,
        domain: crate::domain::DomainUrl,
    ) -> StoreResult<Option<TrackingDomain>>;

    /// Retires a domain for new mail (`true`) or takes it back into use; `None` when there is no
    /// such domain. Retiring a retired domain keeps its first retirement's time.
    async fn retire_tracking_domain(
        &self,
        domain: String,
        retired: bool,
    ) -> StoreResult<Option<TrackingDomain>>;

    /// Notes a domain check's outcome (`error`: why it failed); `None` when there is no such domain.
    async fn record_domain_check(
        &self,
        domain: String,
        at: DateTime<Utc>,
        error: Option<String>,
    ) -> StoreResult<Option<TrackingDomain>>;

    async fn remove_tracking_domain(&self, domain: String) -> StoreResult<DomainRemoval>;
}
