-- A user's sessions (tests and support). Params: $user_id.
SELECT session_id, started_at, ended_at FROM sessions WHERE user_id = $user_id ORDER BY started_at;
