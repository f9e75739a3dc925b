-- With --user-agent parsed the string is not stored, only what was parsed from it: such events keep
-- the class decided at arrival when `reclassify` runs (it has no user agent to read again).
ALTER TABLE events ADD COLUMN ua_reduced INTEGER NOT NULL DEFAULT 0;
