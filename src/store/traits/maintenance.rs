//! Work over what is stored: reclassifying, purging old events, checking and rebuilding the rollups, and the imported address lists.

use super::super::*;

#[async_trait]
pub trait Maintenance: Send + Sync {
    /// Runs the classifier again over the stored events (of one campaign, or all), message by
    /// message in arrival order, and stores what changed. `progress` is told (events done, events
    /// in all) after each chunk.
    async fn reclassify(
        &self,
        campaign: Option<CampaignId>,
        classifier: Arc<Classifier>,
        progress: Progress,
    ) -> StoreResult<ReclassifySummary>;

    /// Recomputes every rollup from the messages and the event log. For repairs (a database edited
    /// by hand, events restored): counts of events that retention deleted are lost by it.
    async fn rebuild_rollups(&self) -> StoreResult<()>;

    /// Compares every campaign's rollups with what the event log gives, and with `repair`
    /// rewrites those that differ. Campaigns of which retention deleted events are skipped (their
    /// rollups hold counts the log no longer has).
    async fn check_rollups(&self, repair: bool) -> StoreResult<RollupCheck>;

    /// Deletes the raw events received before `before` (retention), oldest first in short
    /// transactions; the rollups stay, and so do the reports. `progress` gets (deleted, 0).
    async fn purge_events(
        &self,
        before: DateTime<Utc>,
        progress: Progress,
    ) -> StoreResult<PurgeSummary>;

    /// Address lists imported to replace the shipped ones.
    async fn address_lists(&self) -> StoreResult<Vec<AddressList>>;

    async fn save_address_list(&self, list: AddressList) -> StoreResult<()>;

    /// Forgets an imported list (the shipped one applies again); false when there was none.
    async fn delete_address_list(&self, name: String) -> StoreResult<bool>;
}
