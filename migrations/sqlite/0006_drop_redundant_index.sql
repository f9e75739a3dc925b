-- events_by_message_id (message_id, id) serves every per-message read; this one only cost inserts.
DROP INDEX events_by_message;
