-- The user of a live session: started less than $max_age_s seconds before $now and not ended
-- (whether the user is disabled is the warehouse's marts/portal_session_user).
SELECT user_id, started_at FROM sessions
WHERE session_id = $session_id AND ended_at IS NULL
  AND started_at > CAST($now AS TIMESTAMP) - to_seconds(CAST($max_age_s AS BIGINT));
