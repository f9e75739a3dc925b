//! Paging by id (`?after=`) that never passes an id another process may still commit.
//!
//! SQLite commits one transaction at a time in id order: every id up to the highest committed
//! is final. PostgreSQL hands ids out when a transaction asks, and several commit side by side,
//! so an id may become visible after a higher one; a page stops below the ids of the write
//! transactions in progress (registered by each before it begins: postgres/transactions.rs).

use crate::store::StoreResult;
use crate::store::sql::{Conn, Dialect, params};

/// Which ids a page walks.
#[derive(Clone, Copy)]
pub enum Ids {
    Events,
    Outbox,
}

/// A registered write transaction whose connection is still there (a pid may be reused by a
/// later connection: the start time tells them apart; a role that may not see another's start
/// time counts it as there).
pub const LIVE: &str = "EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = w.pid
    AND (a.backend_start IS NULL OR w.backend_start IS NULL OR a.backend_start = w.backend_start))";

/// A condition that keeps `column` (one of `ids`) below every id a transaction in progress may
/// still commit, with its bound as the parameter `?{n}`, and that bound's value.
pub fn committed(c: &mut dyn Conn, ids: Ids, column: &str, n: usize) -> StoreResult<(String, i64)> {
    if c.dialect() == Dialect::Sqlite {
        return Ok((format!("{column} <= ?{n}"), i64::MAX));
    }
    // Event ids are handed out a block at a time: the last block given is handed out whole.
    let (table, from, block) = match ids {
        Ids::Events => ("events", "events_from", super::batch::EVENT_ID_BLOCK),
        Ids::Outbox => ("webhook_outbox", "outbox_from", 1),
    };
    // Read in a statement of its own, before the page's snapshot: a transaction that registers
    // later gets ids above this, whether or not the page sees it.
    let handed_out: i64 = c.query_one(
        &format!(
            "SELECT coalesce(pg_sequence_last_value(
                 CAST(pg_get_serial_sequence('{table}', 'id') AS regclass)) + {}, 0)",
            block - 1
        ),
        params![],
    )?;
    Ok((
        format!(
            "{column} <= least(?{n}, coalesce(
                 (SELECT min({from}) FROM write_transactions w WHERE {LIVE}), ?{n}))"
        ),
        handed_out,
    ))
}
