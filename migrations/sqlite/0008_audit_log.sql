-- Who read per-recipient data, opted a recipient out, erased, exported or created tokens.
-- The actor is an API token's id (never the token) or "cli".
CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     TEXT NOT NULL,
    actor  TEXT NOT NULL,
    scope  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL
);
