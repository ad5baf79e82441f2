-- API tokens expire and can be revoked (contract C14, issue 20).
--
-- Times are RFC 3339 UTC to the second (YYYY-MM-DDTHH:MM:SSZ), like
-- created_at, so that text order is time order. expires_at NULL: never,
-- which every token made before this migration keeps, so that upgrading
-- loses no access. revoked_at NULL: not revoked.

ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;
ALTER TABLE api_tokens ADD COLUMN revoked_at TEXT;
