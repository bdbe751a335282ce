-- One portal user by sign-in name, with the holder it belongs to (its password hash is in
-- portal/credentials.duckdb, not here). Params: $user_id.
SELECT u.user_id, u.rights_holder_id, u.display_name, u.disabled_at, r.name AS holder_name
FROM portal.users AS u
JOIN ref.rights_holders AS r USING (rights_holder_id)
WHERE u.user_id = $user_id;
