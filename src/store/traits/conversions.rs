//! Conversions a sender's site reports back with a click's reference.

use super::super::*;

/// A conversion as it arrives, checked.
#[derive(Debug, Clone)]
pub struct NewConversion {
    pub tracking_id: i64,
    pub link_no: u16,
    pub clicked_at: DateTime<Utc>,
    pub goal: String,
    /// In millionths of the currency's unit, and the currency.
    pub value: Option<(i64, String)>,
    /// The sender's own id for it, else the reference: a retry is stored once.
    pub dedupe_key: String,
    pub received_at: DateTime<Utc>,
}

/// What storing a conversion came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversionOutcome {
    Stored,
    /// The same conversion (message, goal and id or reference) was stored before.
    Duplicate,
    /// No message has this tracking id (erased, or its campaign deleted).
    UnknownMessage,
    /// The message has [`MAX_CONVERSIONS_PER_MESSAGE`] already: a reference is a credential
    /// anyone holding it may use, so what one click can add is bounded.
    TooMany,
}

/// The most conversions one message (one recipient's mail) may have.
pub const MAX_CONVERSIONS_PER_MESSAGE: i64 = 100;

/// A stored conversion, as the API lists it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConversionRecord {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub campaign_id: CampaignId,
    pub message_id: MessageId,
    /// `null` for mail tracked anonymously.
    pub recipient_id: Option<String>,
    pub link_no: u16,
    pub link_url: Option<String>,
    pub goal: String,
    pub value: Option<f64>,
    pub currency: Option<String>,
    pub clicked_at: DateTime<Utc>,
}

#[async_trait]
pub trait Conversions: Send + Sync {
    /// Stores a conversion and queues its webhook notices, in one transaction.
    async fn record_conversion(&self, conversion: NewConversion) -> StoreResult<ConversionOutcome>;

    /// The campaign's conversions with ids above `after`, oldest first, at most `limit`.
    async fn conversion_page(
        &self,
        campaign: CampaignId,
        after: i64,
        limit: usize,
    ) -> StoreResult<Vec<ConversionRecord>>;
}
