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
}

#[async_trait]
pub trait Conversions: Send + Sync {
    /// Stores a conversion and queues its webhook notices, in one transaction.
    async fn record_conversion(&self, conversion: NewConversion) -> StoreResult<ConversionOutcome>;
}
