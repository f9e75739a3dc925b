-- A message's history summary (see migrations/sqlite/0016_message_history.sql).
ALTER TABLE messages ADD COLUMN history TEXT;
