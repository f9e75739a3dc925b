-- How an endpoint is spoken to (issue 26): `standard_webhooks` (signed JSON notices, `secret` is
-- the whsec_ key) or `segment` (Segment's HTTP tracking API, `secret` is the write key).
ALTER TABLE webhook_endpoints ADD COLUMN protocol TEXT NOT NULL DEFAULT 'standard_webhooks';
