-- How an endpoint is spoken to (see migrations/sqlite/0024_webhook_protocol.sql).
ALTER TABLE webhook_endpoints ADD COLUMN protocol TEXT COLLATE "C" NOT NULL DEFAULT 'standard_webhooks';
