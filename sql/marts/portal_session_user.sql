-- The signed-in user of a live session (portal/credentials.py found the session): the user
-- with its holder, unless disabled. Params: $user_id.
SELECT u.user_id, u.rights_holder_id, u.display_name, u.disabled_at, r.name AS holder_name
FROM portal.users AS u
JOIN ref.rights_holders AS r ON r.rights_holder_id = u.rights_holder_id
WHERE u.user_id = $user_id AND u.disabled_at IS NULL;
