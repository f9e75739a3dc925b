-- Tracking domains of the sender's own (see migrations/sqlite/0022_tracking_domains.sql).
CREATE TABLE tracking_domains (
    domain     TEXT COLLATE "C" PRIMARY KEY,
    url        TEXT COLLATE "C" NOT NULL,
    added_at   TEXT COLLATE "C" NOT NULL,
    retired_at TEXT COLLATE "C",
    -- The last domain check (src/tracking_domains.rs): when, when it last passed, and why not.
    checked_at  TEXT COLLATE "C",
    verified_at TEXT COLLATE "C",
    check_error TEXT
);
ALTER TABLE campaigns ADD COLUMN tracking_domain TEXT COLLATE "C";
