UPDATE sessions SET ended_at = $now WHERE session_id = $session_id AND ended_at IS NULL;
