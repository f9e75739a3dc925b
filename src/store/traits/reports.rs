//! Reading what was stored: a campaign's counts, report rollups, events and export pages.

use super::super::*;

#[async_trait]
pub trait Reports: Send + Sync {
    async fn campaign_stats(&self, id: CampaignId) -> StoreResult<CampaignStats>;

    /// Rollup rows of the hours in `[from_hour, to_hour)` (hours since the Unix epoch).
    async fn report_hours(
        &self,
        id: CampaignId,
        from_hour: i64,
        to_hour: i64,
    ) -> StoreResult<Vec<HourCount>>;

    async fn report_links(&self, id: CampaignId) -> StoreResult<Vec<LinkCount>>;

    async fn report_breakdown(&self, id: CampaignId, dim: Dim) -> StoreResult<Vec<DimCount>>;

    async fn events(&self, query: EventQuery) -> StoreResult<Vec<EventRecord>>;

    /// Where an export of the campaign's events started now ends: the highest id among them (0
    /// when there are none). Events stored later get higher ids, so they are left out.
    async fn export_bound(&self, campaign: CampaignId) -> StoreResult<EventId>;

    /// One page of an export: the campaign's events with ids in `(after, up_to]`, oldest first,
    /// at most `limit`. Each page is a short read of its own: an export, however long, holds no
    /// transaction open.
    async fn export_page(
        &self,
        campaign: CampaignId,
        after: EventId,
        up_to: EventId,
        limit: usize,
    ) -> StoreResult<Vec<EventRecord>>;

    /// The campaign's messages with ids above `after`, oldest first, at most `limit`, each with
    /// what its events came to (retention's representatives of deleted events included): the
    /// rows of its segments.
    async fn message_activity(
        &self,
        campaign: CampaignId,
        after: MessageId,
        limit: usize,
    ) -> StoreResult<Vec<MessageActivity>>;

    /// Every message of these recipients, in every campaign, oldest first, with its activity
    /// (a recipient's best hour to send).
    async fn recipient_activity(
        &self,
        recipients: Vec<String>,
    ) -> StoreResult<Vec<MessageActivity>>;

    /// The named recipients with stored messages, in order of their id, after `after`, at most
    /// `limit` (per-recipient engagement's pages).
    async fn recipients_after(&self, after: String, limit: usize) -> StoreResult<Vec<String>>;

    /// The latest events of a campaign, newest first (the dashboard's live feed starts with them).
    async fn recent_events(
        &self,
        campaign: CampaignId,
        limit: usize,
    ) -> StoreResult<Vec<EventRecord>>;
}
