-- What users keep with a campaign (issue 23 item 7): the subject line, when it was sent (given,
-- or the first registered message's send time), tags (a JSON array of strings) and whether it is
-- archived (left out of the list by default; its tracking keeps working).
ALTER TABLE campaigns ADD COLUMN subject TEXT;
ALTER TABLE campaigns ADD COLUMN sent_at TEXT;
ALTER TABLE campaigns ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE campaigns ADD COLUMN archived_at TEXT;
