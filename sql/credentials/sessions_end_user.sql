-- Every open session of a user ends (the user was disabled).
UPDATE sessions SET ended_at = $now WHERE user_id = $user_id AND ended_at IS NULL;
