-- Retention deletes raw events but keeps the rollups. What the deleted events of a message still
-- mean for later ones (was it opened before? was this link clicked? by a reader?) is kept here as
-- a few representative facts (JSON), so a message's first open is never counted twice.
ALTER TABLE messages ADD COLUMN purged_facts TEXT;
