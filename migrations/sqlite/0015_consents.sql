-- Consent to individual tracking (`--require-consent`), kept as proof: when, how and with what
-- wording it was given, and when it was withdrawn. A recipient's records go with an erasure.
CREATE TABLE consents (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient_id TEXT NOT NULL,
    given_at     TEXT NOT NULL,
    -- How it was given: a form, a preference centre, an import...
    source       TEXT NOT NULL,
    -- The wording the recipient agreed to, or a reference to it.
    text         TEXT,
    withdrawn_at TEXT
);
CREATE INDEX consents_by_recipient ON consents (recipient_id);
