//! Deliverability by mailbox provider over time: which campaigns are due for their check, the
//! trailing figures a check compares with, the checks recorded, and their history.

use super::super::*;
use crate::analytics::provider_drop::{FirstDay, ProviderCheck};

/// A recorded check, with its campaign's name and send time: flat, so that it is one CSV row.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProviderHistoryRow {
    pub campaign_id: CampaignId,
    pub campaign_name: String,
    pub sent_at: DateTime<Utc>,
    pub provider: String,
    pub sent: u64,
    pub read_in_window: u64,
    pub open_rate: Option<f64>,
    pub trailing_campaigns: u64,
    pub trailing_open_rate: Option<f64>,
    pub dropped: bool,
}

impl ProviderHistoryRow {
    pub fn new(campaign_name: String, sent_at: DateTime<Utc>, k: ProviderCheck) -> Self {
        ProviderHistoryRow {
            campaign_id: k.campaign_id,
            campaign_name,
            sent_at,
            provider: k.provider,
            sent: k.sent,
            read_in_window: k.read_in_window,
            open_rate: k.open_rate,
            trailing_campaigns: k.trailing_campaigns,
            trailing_open_rate: k.trailing_open_rate,
            dropped: k.dropped,
        }
    }
}

#[async_trait]
pub trait Deliverability: Send + Sync {
    /// Campaigns sent at or before `sent_before` and not checked yet, oldest first, at most
    /// `limit`.
    async fn campaigns_due_for_provider_check(
        &self,
        sent_before: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<Campaign>>;

    /// The provider's first days in the checked campaigns sent before `before`, newest first, at
    /// most `limit`, each with at least `min_sent` messages.
    async fn provider_trailing(
        &self,
        provider: String,
        before: DateTime<Utc>,
        min_sent: u64,
        limit: usize,
    ) -> StoreResult<Vec<FirstDay>>;

    /// Records a campaign's checks and, when `notify`, a webhook notice per dropped provider, in
    /// one transaction; `false` (nothing written) when another process checked it first.
    async fn record_provider_checks(
        &self,
        campaign: Campaign,
        checks: Vec<ProviderCheck>,
        notify: bool,
    ) -> StoreResult<bool>;

    /// Recorded checks, newest campaign first, at most `limit`; of one provider when given.
    async fn provider_history(
        &self,
        provider: Option<String>,
        limit: usize,
    ) -> StoreResult<Vec<ProviderHistoryRow>>;
}
