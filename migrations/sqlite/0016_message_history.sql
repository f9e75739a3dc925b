-- What the group commit needs of a message's earlier events, kept on the message (JSON, see
-- src/store/queries/history.rs): representatives of its older events and its last two minutes of
-- events in full. A batch reads it with the message instead of reading every earlier event.
-- NULL (messages from before this migration, or after retention or reclassification changed
-- their events) means: read the events once and write it.
ALTER TABLE messages ADD COLUMN history TEXT;
