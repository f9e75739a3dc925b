//! Webhook endpoints and their notices: registered, claimed for sending, finished, replayed.

use super::super::*;

#[async_trait]
pub trait Outbox: Send + Sync {
    /// Registers a webhook endpoint; it receives notices of what is stored from now on.
    async fn create_webhook(&self, webhook: NewWebhook) -> StoreResult<Webhook>;

    /// Every endpoint with its delivery status.
    async fn webhooks(&self) -> StoreResult<Vec<Webhook>>;

    /// Removes an endpoint and its outbox; false when there was none.
    async fn delete_webhook(&self, id: i64) -> StoreResult<bool>;

    /// Endpoints with pending notices, with the time the earliest may be sent.
    async fn due_webhooks(&self) -> StoreResult<Vec<DueEndpoint>>;

    /// Takes up to `limit` of the endpoint's notices that are due at `now`, oldest first, and
    /// holds them until `lease_until` (after a crash they become due again then).
    async fn claim_webhook_deliveries(
        &self,
        endpoint: i64,
        limit: usize,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Vec<Delivery>>;

    /// Records how an attempt went: each notice's next state, and the endpoint's status.
    async fn finish_webhook_deliveries(
        &self,
        endpoint: i64,
        results: Vec<(i64, Next)>,
        attempt: Attempt,
    ) -> StoreResult<()>;

    /// Makes the dead letters of one endpoint (or all) pending again, due now; returns how many.
    async fn replay_webhooks(&self, endpoint: Option<i64>) -> StoreResult<u64>;

    /// The endpoint's notices with ids above `after`, oldest first, optionally of one state.
    async fn webhook_deliveries(
        &self,
        endpoint: i64,
        state: Option<String>,
        after: i64,
        limit: usize,
    ) -> StoreResult<Vec<DeliveryRecord>>;
}
