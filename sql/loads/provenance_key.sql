-- A provenance API client's key (only the secret's sha256 is kept).
INSERT INTO provenance.api_keys VALUES ($key_id, $client, $secret_sha256, $rate_per_minute, $now, NULL);
