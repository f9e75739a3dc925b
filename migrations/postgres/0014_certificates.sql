-- ACME certificates, accounts and pending challenges (see migrations/sqlite/0023_certificates.sql).
CREATE TABLE certificates (
    domain      TEXT COLLATE "C" PRIMARY KEY,
    chain_pem   TEXT,
    key_pem     TEXT,
    not_before  TEXT COLLATE "C",
    not_after   TEXT COLLATE "C",
    renew_at    TEXT COLLATE "C",
    issued_at   TEXT COLLATE "C",
    lease_owner TEXT,
    lease_until TEXT COLLATE "C",
    failures    BIGINT NOT NULL DEFAULT 0,
    retry_at    TEXT COLLATE "C",
    last_error  TEXT
);
CREATE TABLE acme_accounts (
    directory   TEXT COLLATE "C" PRIMARY KEY,
    credentials TEXT NOT NULL,
    created_at  TEXT COLLATE "C" NOT NULL
);
CREATE TABLE acme_challenges (
    token             TEXT COLLATE "C" PRIMARY KEY,
    domain            TEXT COLLATE "C" NOT NULL,
    key_authorization TEXT NOT NULL,
    created_at        TEXT COLLATE "C" NOT NULL
);
CREATE INDEX acme_challenges_domain ON acme_challenges (domain);
