-- Disable a user; its sessions (in portal/credentials.duckdb) end right after.
UPDATE portal.users SET disabled_at = $now WHERE user_id = $user_id AND disabled_at IS NULL;
