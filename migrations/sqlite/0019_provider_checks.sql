-- Deliverability by mailbox provider over time (issue 23 item 4). Once a campaign's mail is a day
-- old, each provider's messages and how many of them a reader read within 24 hours of sending are
-- kept here, with the provider's trailing figures of the campaigns before it, so that a later
-- campaign compares with them without reading old events again; `dropped` marks a provider whose
-- readers opened far less than its trailing average (a sign of the spam folder).
ALTER TABLE campaigns ADD COLUMN providers_checked_at TEXT;
CREATE TABLE provider_checks (
    campaign_id    INTEGER NOT NULL REFERENCES campaigns(id),
    provider       TEXT NOT NULL,
    -- The campaign's send time, so that the trailing campaigns are found by index.
    sent_at        TEXT NOT NULL,
    sent           INTEGER NOT NULL,
    read_in_window INTEGER NOT NULL,
    -- Summed over the provider's trailing campaigns; NULL when there were too few.
    trailing_campaigns INTEGER NOT NULL DEFAULT 0,
    trailing_sent  INTEGER,
    trailing_read  INTEGER,
    dropped        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, provider)
) WITHOUT ROWID;
CREATE INDEX provider_checks_by_provider ON provider_checks(provider, sent_at);
