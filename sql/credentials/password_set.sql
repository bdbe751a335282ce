-- A user's password hash, set (again: a rerun after a kill, before the user row was written).
INSERT OR REPLACE INTO passwords VALUES ($user_id, $password_hash, $now);
