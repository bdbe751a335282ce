-- Every portal user (never the password hash): what `tributary portal users list` prints.
SELECT user_id, rights_holder_id, display_name, created_by, created_at, disabled_at
FROM portal.users ORDER BY rights_holder_id, user_id;
