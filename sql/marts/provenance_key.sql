-- A live API key by id (revoked keys are never returned).
SELECT key_id, client, secret_sha256, rate_per_minute FROM provenance.api_keys
WHERE key_id = $key_id AND revoked_at IS NULL;
