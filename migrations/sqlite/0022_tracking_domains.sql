-- Tracking domains of the sender's own (issue 25): the base URLs mail links may use instead of
-- --public-url. `retired_at`: no new mail uses it, mail already sent keeps working. A campaign
-- names one (`tracking_domain`) or none (the public URL).
CREATE TABLE tracking_domains (
    domain     TEXT PRIMARY KEY,
    url        TEXT NOT NULL,
    added_at   TEXT NOT NULL,
    retired_at TEXT,
    -- The last domain check (src/tracking_domains.rs): when, when it last passed, and why not.
    checked_at  TEXT,
    verified_at TEXT,
    check_error TEXT
);
ALTER TABLE campaigns ADD COLUMN tracking_domain TEXT;
