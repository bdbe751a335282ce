-- The user of a live session: started less than $max_age_s seconds before $now, not ended,
-- its user not disabled. Params: $session_id, $now, $max_age_s.
SELECT u.user_id, u.rights_holder_id, u.display_name, u.disabled_at, r.name AS holder_name
FROM portal.sessions AS s
JOIN portal.users AS u USING (user_id)
JOIN ref.rights_holders AS r ON r.rights_holder_id = u.rights_holder_id
WHERE s.session_id = $session_id AND s.ended_at IS NULL AND u.disabled_at IS NULL
  AND s.started_at > CAST($now AS TIMESTAMP) - to_seconds(CAST($max_age_s AS BIGINT));
