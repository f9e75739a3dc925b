-- Conversions (issue 23 item 2): a campaign may add UTM parameters to its tracked destinations
-- (`utm`, JSON {"source", "medium", "campaign"}) and a signed click reference (`conversions`);
-- a sender's site reports conversions back with that reference.
ALTER TABLE campaigns ADD COLUMN utm TEXT;
ALTER TABLE campaigns ADD COLUMN conversions INTEGER NOT NULL DEFAULT 0;
CREATE TABLE conversions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id  INTEGER NOT NULL REFERENCES campaigns(id),
    message_id   INTEGER NOT NULL REFERENCES messages(id),
    link_no      INTEGER NOT NULL,
    goal         TEXT NOT NULL,
    -- Millionths of the currency's unit, so that sums are exact; NULL with no value.
    value_micros INTEGER,
    currency     TEXT,
    -- The sender's own id for it (an order number), else the reference: a retry counts once.
    dedupe_key   TEXT NOT NULL,
    clicked_at   TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    UNIQUE (message_id, goal, dedupe_key)
);
CREATE INDEX conversions_by_campaign ON conversions(campaign_id, id);
