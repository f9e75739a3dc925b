-- Dashboard sign-in: passwords an admin set (one per scope, PBKDF2-SHA256 in a
-- "pbkdf2-sha256$rounds$salt$hash" string) and sessions (only the SHA-256 of the cookie is kept).
CREATE TABLE dashboard_passwords (
    scope      TEXT PRIMARY KEY CHECK (scope IN ('admin', 'analyst', 'viewer')),
    hash       TEXT NOT NULL,
    set_at     TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE sessions (
    session_hash BLOB PRIMARY KEY,
    -- The API token signed in with, or NULL for a password.
    token_id     INTEGER,
    scope        TEXT NOT NULL CHECK (scope IN ('admin', 'analyst', 'viewer')),
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL
) WITHOUT ROWID;
