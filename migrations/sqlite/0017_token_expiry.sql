-- An API token may expire (`token create --expires-days`); NULL: it does not.
ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;
