-- Certificates obtained by ACME (issue 25) for the tracking domains and the dashboard's host,
-- shared by every process on the database. The row is also the order's lease: one process orders
-- a name at a time (`lease_owner` until `lease_until`), a failed order waits until `retry_at`
-- (back-off), and the certificate is ordered again from `renew_at` on.
CREATE TABLE certificates (
    domain      TEXT PRIMARY KEY,
    chain_pem   TEXT,
    key_pem     TEXT,
    not_before  TEXT,
    not_after   TEXT,
    renew_at    TEXT,
    issued_at   TEXT,
    lease_owner TEXT,
    lease_until TEXT,
    failures    INTEGER NOT NULL DEFAULT 0,
    retry_at    TEXT,
    last_error  TEXT
);
-- The ACME account per directory URL (its key inside, kept like the signing keys).
CREATE TABLE acme_accounts (
    directory   TEXT PRIMARY KEY,
    credentials TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
-- Challenges being validated, so that whichever process the ACME server reaches answers them.
CREATE TABLE acme_challenges (
    token             TEXT PRIMARY KEY,
    domain            TEXT NOT NULL,
    key_authorization TEXT NOT NULL,
    created_at        TEXT NOT NULL
);
CREATE INDEX acme_challenges_domain ON acme_challenges (domain);
