//! What is kept per recipient: opt-outs, consent, erasure and the subject access export.

use super::super::*;

#[async_trait]
pub trait Recipients: Send + Sync {
    /// From now on, this recipient's opens and clicks are answered but not stored. Returns when
    /// the recipient had opted out (the first time), if it had.
    async fn opt_out(&self, recipient_id: String, source: String) -> StoreResult<DateTime<Utc>>;

    /// Records the recipient's consent to individual tracking.
    async fn record_consent(
        &self,
        recipient_id: String,
        source: String,
        text: Option<String>,
        given_at: DateTime<Utc>,
    ) -> StoreResult<ConsentRecord>;

    /// Withdraws every standing consent of the recipient; returns how many. With `anonymize`
    /// (`--without-consent anonymous`) the recipient's messages are made anonymous in the same
    /// transaction (see [`WithoutConsent::Anonymous`]); the second number says how many. Webhook
    /// notices of the recipient's activity not delivered yet are withdrawn.
    async fn withdraw_consent(
        &self,
        recipient_id: String,
        anonymize: bool,
    ) -> StoreResult<(u64, u64)>;

    /// The recipient's consent records, oldest first (withdrawn ones included: the proof).
    async fn consents(&self, recipient_id: String) -> StoreResult<Vec<ConsentRecord>>;

    /// Which of these recipients have a standing consent.
    async fn consenting(&self, recipients: Vec<String>) -> StoreResult<Vec<String>>;

    /// Which of these recipients have opted out.
    async fn opted_out(&self, recipients: Vec<String>) -> StoreResult<Vec<String>>;

    /// The recipient of the message with this tracking id (the "stop tracking me" link).
    async fn recipient_of(&self, tracking_id: i64) -> StoreResult<Option<String>>;

    /// Removes every message, link, event and opt-out record of the recipient, across campaigns.
    async fn erase_recipient(&self, recipient_id: String) -> StoreResult<Erasure>;

    /// Everything stored about the recipient (a subject access request).
    async fn recipient_export(&self, recipient_id: String) -> StoreResult<RecipientExport>;
}
