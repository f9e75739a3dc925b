-- A campaign's subject, send time, tags and archive time (see migrations/sqlite/0018).
ALTER TABLE campaigns ADD COLUMN subject TEXT;
ALTER TABLE campaigns ADD COLUMN sent_at TEXT COLLATE "C";
ALTER TABLE campaigns ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE campaigns ADD COLUMN archived_at TEXT COLLATE "C";
