SELECT key_id, client, rate_per_minute, created_at, revoked_at FROM provenance.api_keys ORDER BY created_at, key_id;
