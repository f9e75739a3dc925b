-- Write transactions in progress, one row per connection while it writes, holding the last event
-- and outbox ids handed out before the transaction began: its own ids are above them. A reader
-- paging by id (`?after=`) stops at the lowest, so an event that commits after a higher one of
-- another process is not skipped (src/store/postgres/paging.rs). Unlogged: the rows matter only
-- while their connection lives, cost no WAL, and are gone after a server crash.
CREATE UNLOGGED TABLE write_transactions (
    pid           INTEGER PRIMARY KEY,
    backend_start TIMESTAMPTZ,
    events_from   BIGINT NOT NULL,
    outbox_from   BIGINT NOT NULL
);
