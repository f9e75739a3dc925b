-- Messages opened in the widest sense (see migrations/sqlite/0021).
ALTER TABLE campaign_totals ADD COLUMN opened BIGINT NOT NULL DEFAULT 0;
UPDATE campaign_totals SET opened = (
    SELECT count(*) FROM messages m
    WHERE m.campaign_id = campaign_totals.campaign_id
      AND (m.purged_facts IS NOT NULL
           OR EXISTS (SELECT 1 FROM events e WHERE e.message_id = m.id)));
