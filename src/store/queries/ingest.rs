//! Events into storage: the group commit, from the journal, and how far the journal is applied.

use super::*;

#[async_trait]
impl<E: Engine> Ingest for SqlStore<E> {
    async fn record_events(
        &self,
        batch: Arc<[NewEvent]>,
        classifier: Arc<Classifier>,
    ) -> StoreResult<Vec<RecordOutcome>> {
        self.write(move |c| in_tx(c, |c| record_batch(c, &batch, &classifier)))
            .await
    }

    fn record_journaled(
        &self,
        batch: &[NewEvent],
        classifier: &Classifier,
        journal: &str,
        position: (u64, u64),
    ) -> StoreResult<Vec<RecordOutcome>> {
        self.engine.write_here(|c| {
            in_tx(c, |c| {
                let outcomes = record_batch(c, batch, classifier)?;
                c.execute(
                    "INSERT INTO spool_progress (spool, segment, byte_offset, updated_at)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (spool) DO UPDATE SET segment = excluded.segment,
                         byte_offset = excluded.byte_offset, updated_at = excluded.updated_at",
                    params![journal, position.0, position.1, Utc::now()],
                )?;
                Ok(outcomes)
            })
        })
    }

    async fn journal_position(&self, journal: String) -> StoreResult<Option<(u64, u64)>> {
        self.read(move |c| {
            c.query_row(
                "SELECT segment, byte_offset FROM spool_progress WHERE spool = ?1",
                params![journal],
            )?
            .map(|r| Ok((r.get(0)?, r.get(1)?)))
            .transpose()
        })
        .await
    }
}
