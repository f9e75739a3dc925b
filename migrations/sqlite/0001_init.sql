-- The tracker's first schema: campaigns, messages and their links, the append-only event log,
-- signing keys and API tokens. Times are RFC 3339 UTC text with microseconds (sortable as text).

CREATE TABLE campaigns (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    template_html TEXT,
    created_at    TEXT NOT NULL
);

-- One mail to one recipient. tracking_id is the random 64-bit number that tokens carry.
CREATE TABLE messages (
    id           INTEGER PRIMARY KEY,
    campaign_id  INTEGER NOT NULL REFERENCES campaigns(id),
    recipient_id TEXT NOT NULL,
    tracking_id  INTEGER NOT NULL UNIQUE,
    sent_at      TEXT NOT NULL,
    created_at   TEXT NOT NULL
);
CREATE INDEX messages_by_campaign ON messages(campaign_id);
CREATE INDEX messages_by_recipient ON messages(recipient_id);

-- Click destinations live here and only here: a click token names (message, link_no).
CREATE TABLE links (
    message_id INTEGER NOT NULL REFERENCES messages(id),
    link_no    INTEGER NOT NULL,
    url        TEXT NOT NULL,
    PRIMARY KEY (message_id, link_no)
) WITHOUT ROWID;

-- Append-only. AUTOINCREMENT so ids are never reused and stay usable as export cursors.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('open', 'click')),
    campaign_id INTEGER NOT NULL,
    message_id  INTEGER NOT NULL,
    link_no     INTEGER,
    method      TEXT NOT NULL,
    user_agent  TEXT,
    client_ip   TEXT,
    headers     TEXT
);
CREATE INDEX events_by_campaign ON events(campaign_id, id);
CREATE INDEX events_by_message ON events(message_id, kind);

CREATE TABLE signing_keys (
    id         INTEGER PRIMARY KEY CHECK (id BETWEEN 1 AND 255),
    secret     BLOB NOT NULL CHECK (length(secret) = 32),
    created_at TEXT NOT NULL
);

-- Only the SHA-256 of an API token is kept.
CREATE TABLE api_tokens (
    id         INTEGER PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE,
    scope      TEXT NOT NULL CHECK (scope IN ('admin', 'analyst', 'viewer')),
    created_at TEXT NOT NULL
);
