-- Disable a user and end its sessions at once (one transaction, by the caller).
UPDATE portal.users SET disabled_at = $now WHERE user_id = $user_id AND disabled_at IS NULL;
UPDATE portal.sessions SET ended_at = $now WHERE user_id = $user_id AND ended_at IS NULL;
