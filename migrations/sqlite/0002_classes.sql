-- Classification of every event (src/classify): the class, why, and the two flags; plus what the
-- user agent says about the client. ip_tags keeps which published address lists the full client
-- address fell in, since the stored address may be truncated or left out.
ALTER TABLE events ADD COLUMN class     TEXT NOT NULL DEFAULT 'human';
ALTER TABLE events ADD COLUMN reasons   TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN duplicate INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN internal  INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN ip_tags   TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN client    TEXT;
ALTER TABLE events ADD COLUMN os        TEXT;
ALTER TABLE events ADD COLUMN device    TEXT NOT NULL DEFAULT 'unknown';
CREATE INDEX events_by_message_id ON events(message_id, id);
