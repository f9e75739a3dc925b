//! Events into storage: the group commit, from the journal, and how far the journal is applied.

use super::super::*;

#[async_trait]
pub trait Ingest: Send + Sync {
    /// Stores a batch of events in one transaction (the group commit). The outcomes are in the
    /// batch's order; when this returns `Ok`, every `Recorded` event is durable.
    /// Each event is classified (against the earlier events of its message) as it is stored.
    async fn record_events(
        &self,
        batch: Arc<[NewEvent]>,
        classifier: Arc<Classifier>,
    ) -> StoreResult<Vec<RecordOutcome>>;

    /// Stores events read from the event journal like [`Ingest::record_events`], on the calling
    /// thread (the store worker's own, which may block), and in the same transaction records that
    /// the journal `journal` has been applied up to `position` (segment, byte offset): a worker
    /// that stops anywhere resumes without storing an event twice.
    fn record_journaled(
        &self,
        batch: &[NewEvent],
        classifier: &Classifier,
        journal: &str,
        position: (u64, u64),
    ) -> StoreResult<Vec<RecordOutcome>>;

    /// How far the journal has been applied (see [`Ingest::record_journaled`]).
    async fn journal_position(&self, journal: String) -> StoreResult<Option<(u64, u64)>>;
}
