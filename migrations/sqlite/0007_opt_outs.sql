-- Recipients who asked not to be tracked: their opens and clicks are answered but not stored.
CREATE TABLE opt_outs (
    recipient_id TEXT PRIMARY KEY,
    opted_out_at TEXT NOT NULL,
    -- How it was asked for: "api", or what the caller said.
    source       TEXT NOT NULL
) WITHOUT ROWID;
