//! Write transactions of several processes on one database, side by side.
//!
//! Every write transaction takes one advisory lock *shared*, so they do not wait for each other;
//! what must not interleave is kept apart by row locks (a batch locks its messages in id order
//! before reading their history, see `record_batch`; rollup rows are upserted in key order).
//! Maintenance that rewrites what the others read (reclassify, opt-out, consent withdrawal,
//! erasure, purge, rollup rebuilds) takes the same lock *exclusively* and runs alone.
//!
//! Ids are handed out when a transaction asks, not when it commits, so without care a reader
//! paging with `?after=` could pass an id another process commits later. Before it begins, each
//! write transaction registers (committed at once, in an unlogged table) the last event and
//! outbox ids handed out so far; its own ids are above them. Its commit removes the row. A reader
//! stops below the lowest registered id (see `store/queries/paging.rs`); rows of connections that are
//! gone no longer count.
//!
//! The statements are public for tests that play another process's transaction.

use super::PgConn;
use crate::store::queries::paging::LIVE;
use crate::store::sql::Conn;
use crate::store::{StoreError, StoreResult};

pub const SHARED: &str =
    "SELECT pg_advisory_xact_lock_shared(1835164526, hashtext(current_schema()))";
pub const EXCLUSIVE: &str = "SELECT pg_advisory_xact_lock(1835164526, hashtext(current_schema()))";

/// Registers this connection's transaction, in its own transaction, committed before the write
/// transaction begins (a row the readers cannot see yet would protect nothing). Event ids are
/// handed out in blocks of 1,024 (`EVENT_ID_BLOCK`): every id of the last block given out is
/// someone else's, so this transaction's own ids start above it.
pub const REGISTER: &str = "BEGIN;
    INSERT INTO write_transactions (pid, backend_start, events_from, outbox_from)
    SELECT pg_backend_pid(),
           (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()),
           coalesce(pg_sequence_last_value(
               pg_get_serial_sequence('events', 'id')::regclass) + 1023, 0),
           coalesce(pg_sequence_last_value(
               pg_get_serial_sequence('webhook_outbox', 'id')::regclass), 0)
    ON CONFLICT (pid) DO UPDATE SET backend_start = excluded.backend_start,
        events_from = excluded.events_from, outbox_from = excluded.outbox_from;
    COMMIT;";

pub const UNREGISTER: &str = "DELETE FROM write_transactions WHERE pid = pg_backend_pid()";

impl PgConn {
    pub(super) fn begin_write(&mut self, exclusive: bool) -> StoreResult<()> {
        let lock = if exclusive { EXCLUSIVE } else { SHARED };
        self.client
            .batch_execute(&format!("{REGISTER} BEGIN; {lock}"))
            .map_err(super::store_error)?;
        self.in_transaction = true;
        Ok(())
    }

    pub(super) fn commit_write(&mut self) -> StoreResult<()> {
        self.in_transaction = false;
        // The connection may have gone after the server committed: the outcome is unknown, so
        // this is not "unavailable" (which would let the writer spool, and store the batch twice).
        self.client
            .batch_execute(&format!("{UNREGISTER}; COMMIT"))
            .map_err(|e| {
                StoreError::Other(format!(
                    "the database did not confirm the commit, its outcome is unknown: {}",
                    super::describe(&e)
                ))
            })
    }

    pub(super) fn rollback_write(&mut self) -> StoreResult<()> {
        self.in_transaction = false;
        self.client
            .batch_execute(&format!("ROLLBACK; {UNREGISTER}"))
            .map_err(super::store_error)
    }
}

/// Drops the rows of connections that are gone (a process killed while writing), at start.
pub fn forget_departed(c: &mut dyn Conn) -> StoreResult<()> {
    c.execute_batch(&format!(
        "DELETE FROM write_transactions w WHERE NOT {LIVE}"
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_registration_counts_the_last_event_id_block_as_handed_out() {
        let last_of_block = format!("+ {}, 0)", crate::store::queries::EVENT_ID_BLOCK - 1);
        assert!(
            super::REGISTER.contains(&last_of_block),
            "{}",
            super::REGISTER
        );
    }
}
