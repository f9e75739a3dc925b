//! Campaigns and the messages registered in them, and what the tracker looks up of a message.

use super::super::*;

#[async_trait]
pub trait Campaigns: Send + Sync {
    async fn create_campaign(&self, campaign: NewCampaign) -> StoreResult<Campaign>;

    async fn campaign(&self, id: CampaignId) -> StoreResult<Option<Campaign>>;

    /// Newest first, without their templates.
    async fn campaigns(&self, archived: Archived) -> StoreResult<Vec<ListedCampaign>>;

    /// Renames, archives or changes a campaign's details; `None` when there is no such campaign.
    async fn edit_campaign(
        &self,
        id: CampaignId,
        edit: CampaignEdit,
    ) -> StoreResult<Option<Campaign>>;

    /// Deletes a campaign with its messages, links, events and rollups, and withdraws the
    /// notices about its events not sent yet (as erasure does for a recipient); webhook
    /// receivers are told (`campaign_deleted`). `None` when there is no such campaign.
    async fn delete_campaign(&self, id: CampaignId) -> StoreResult<Option<CampaignDeletion>>;

    /// Stores messages and their links in one transaction; returns their ids in the same order.
    async fn insert_messages(
        &self,
        campaign: CampaignId,
        messages: Vec<NewMessage>,
    ) -> StoreResult<Vec<MessageId>>;

    /// What a tracking request needs before it is answered: `None` when no message has this
    /// tracking id; else the message's [`Standing`], and the destination of link `link_no`
    /// (`None` when the message has no such link, or when no link was asked for).
    async fn lookup_link(
        &self,
        tracking_id: i64,
        link_no: Option<u16>,
    ) -> StoreResult<Option<LinkLookup>>;
}
