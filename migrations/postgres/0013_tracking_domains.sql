-- Tracking domains of the sender's own (see migrations/sqlite/0022_tracking_domains.sql).
CREATE TABLE tracking_domains (
    domain     TEXT COLLATE "C" PRIMARY KEY,
    url        TEXT COLLATE "C" NOT NULL,
    added_at   TEXT COLLATE "C" NOT NULL,
    retired_at TEXT COLLATE "C"
);
ALTER TABLE campaigns ADD COLUMN tracking_domain TEXT COLLATE "C";
