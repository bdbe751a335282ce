-- A user's password hash. Params: $user_id.
SELECT password_hash FROM passwords WHERE user_id = $user_id;
