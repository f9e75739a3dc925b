-- How far each tracker's local spool has been replayed, written in the same transaction as the
-- replayed events, so a replay interrupted anywhere resumes without storing an event twice.
CREATE TABLE spool_progress (
    spool       TEXT COLLATE "C" PRIMARY KEY,
    segment     BIGINT NOT NULL,
    byte_offset BIGINT NOT NULL,
    updated_at  TEXT NOT NULL
);
