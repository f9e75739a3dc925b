-- Messages opened in the widest sense (pixel fetched or a link clicked, by anyone or anything):
-- the open rate's ceiling, so that it can never fall below the floor (readers' opens and
-- click-implied opens). Exact for stored data: a message has it when it has any event left, or
-- facts of events retention deleted.
ALTER TABLE campaign_totals ADD COLUMN opened INTEGER NOT NULL DEFAULT 0;
UPDATE campaign_totals SET opened = (
    SELECT count(*) FROM messages m
    WHERE m.campaign_id = campaign_totals.campaign_id
      AND (m.purged_facts IS NOT NULL
           OR EXISTS (SELECT 1 FROM events e WHERE e.message_id = m.id)));
