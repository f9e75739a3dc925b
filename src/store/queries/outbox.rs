//! Webhook endpoints and their notices: registered, claimed for sending, finished, replayed.

use super::*;

#[async_trait]
impl<E: Engine> Outbox for SqlStore<E> {
    async fn create_webhook(&self, webhook: NewWebhook) -> StoreResult<Webhook> {
        self.write(move |c| {
            let id = webhooks::create(c, &webhook)?;
            let mut all = webhooks::list(c)?;
            let at = all.iter().position(|w| w.id == id).expect("just stored");
            Ok(all.swap_remove(at))
        })
        .await
    }

    async fn webhooks(&self) -> StoreResult<Vec<Webhook>> {
        self.read(webhooks::list).await
    }

    async fn delete_webhook(&self, id: i64) -> StoreResult<bool> {
        self.write(move |c| {
            Ok(c.execute("DELETE FROM webhook_endpoints WHERE id = ?1", params![id])? > 0)
        })
        .await
    }

    async fn due_webhooks(&self) -> StoreResult<Vec<DueEndpoint>> {
        self.read(webhooks::due).await
    }

    async fn claim_webhook_deliveries(
        &self,
        endpoint: i64,
        limit: usize,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Vec<Delivery>> {
        self.write(move |c| in_tx(c, |c| webhooks::claim(c, endpoint, limit, now, lease_until)))
            .await
    }

    async fn finish_webhook_deliveries(
        &self,
        endpoint: i64,
        results: Vec<(i64, Next)>,
        attempt: Attempt,
    ) -> StoreResult<()> {
        self.write(move |c| in_tx(c, |c| webhooks::finish(c, endpoint, &results, &attempt)))
            .await
    }

    async fn replay_webhooks(&self, endpoint: Option<i64>) -> StoreResult<u64> {
        self.write(move |c| webhooks::replay(c, endpoint)).await
    }

    async fn webhook_deliveries(
        &self,
        endpoint: i64,
        state: Option<String>,
        after: i64,
        limit: usize,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        self.read(move |c| webhooks::deliveries(c, endpoint, state.as_deref(), after, limit))
            .await
    }
}
