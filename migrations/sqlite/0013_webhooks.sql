-- Webhook endpoints and the outbox of notices waiting for them. The writer adds outbox rows in the
-- same transaction as the events they tell of, so an acknowledged event is never left unsent.
CREATE TABLE webhook_endpoints (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    url          TEXT NOT NULL,
    -- Standard Webhooks secret: "whsec_" + base64 of the key bytes. Needed to sign, so kept as is.
    secret       TEXT NOT NULL,
    -- Space-separated notice kinds: open click opt_out erasure.
    kinds        TEXT NOT NULL,
    -- Space-separated event classes; NULL for every class.
    classes      TEXT,
    -- Only this campaign's opens and clicks; NULL for every campaign.
    campaign_id  INTEGER,
    -- 1: only the first reader (non-machine) open or click of each message.
    first_only   INTEGER NOT NULL DEFAULT 0,
    batch_size   INTEGER NOT NULL DEFAULT 1,
    -- Requests a second at most.
    rate_limit   INTEGER NOT NULL DEFAULT 10,
    description  TEXT,
    created_at   TEXT NOT NULL,
    -- Delivery status, kept by the delivery worker. Delivered notices are deleted at once and
    -- only counted here, so the outbox holds only what is still to be sent.
    delivered_total      INTEGER NOT NULL DEFAULT 0,
    -- JSON array of the latest request latencies in milliseconds (at most 100).
    recent_latencies     TEXT,
    last_success_at      TEXT,
    last_failure_at      TEXT,
    last_error           TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE webhook_outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_id  INTEGER NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    -- The stable id receivers de-duplicate by: evt_<event id>, or opt_/era_ + a random part.
    notice_id    TEXT NOT NULL,
    type         TEXT NOT NULL,
    occurred_at  TEXT NOT NULL,
    -- The event told of (not a foreign key: retention may delete the event first).
    event_id     INTEGER,
    -- Whose data the payload holds, so an erasure can withdraw what was not sent yet.
    recipient_id TEXT,
    payload      TEXT,
    -- A delivered notice is deleted; a dead letter waits for `replay`.
    state        TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'dead')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    -- When a pending notice may be sent (again); while a worker holds it, the end of its lease.
    next_attempt_at TEXT NOT NULL,
    last_status  INTEGER,
    last_error   TEXT
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (endpoint_id, next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX webhook_outbox_recipient ON webhook_outbox (recipient_id)
    WHERE recipient_id IS NOT NULL;
CREATE INDEX webhook_outbox_event ON webhook_outbox (event_id) WHERE state = 'pending';
CREATE INDEX webhook_outbox_dead ON webhook_outbox (endpoint_id, id) WHERE state = 'dead';
