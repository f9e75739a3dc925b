-- When a token of this message first failed its signature check (an altered token: scanners try
-- variants of a link before following it). Classification reads it (rule token:altered-before).
ALTER TABLE messages ADD COLUMN first_failed_check_at TEXT;
