-- Address lists imported by `mailbeacon ranges import`, replacing the copy shipped in data/ip-ranges.
CREATE TABLE address_lists (
    list        TEXT PRIMARY KEY,
    source      TEXT NOT NULL,
    format      TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    -- One CIDR per line.
    cidrs       TEXT NOT NULL
);
