-- Deliverability by mailbox provider over time (see migrations/sqlite/0019).
ALTER TABLE campaigns ADD COLUMN providers_checked_at TEXT COLLATE "C";
CREATE TABLE provider_checks (
    campaign_id        BIGINT NOT NULL REFERENCES campaigns(id),
    provider           TEXT COLLATE "C" NOT NULL,
    sent_at            TEXT COLLATE "C" NOT NULL,
    sent               BIGINT NOT NULL,
    read_in_window     BIGINT NOT NULL,
    trailing_campaigns BIGINT NOT NULL DEFAULT 0,
    trailing_sent      BIGINT,
    trailing_read      BIGINT,
    dropped            BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, provider)
);
CREATE INDEX provider_checks_by_provider ON provider_checks(provider, sent_at);
