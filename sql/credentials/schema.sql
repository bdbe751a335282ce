-- The portal's secrets, in TRIBUTARY_HOME/portal/credentials.duckdb, never in the warehouse
-- (auditors and period snapshots read the whole warehouse; see portal/credentials.py).

-- A user's password: only argon2-cffi's PHC string (algorithm, parameters, salt, hash).
CREATE TABLE IF NOT EXISTS passwords (
    user_id       VARCHAR PRIMARY KEY,  -- portal.users.user_id in the warehouse
    password_hash VARCHAR NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    set_at        TIMESTAMP NOT NULL
);

-- Sign-in sessions. The cookie is signed and carries only a random token; this keeps its
-- sha256. A session is valid while it has not ended and its user is not disabled (sign-out and
-- `portal users disable` end it, so a copied cookie stops working with the session).
CREATE TABLE IF NOT EXISTS sessions (
    session_id  VARCHAR PRIMARY KEY,
    user_id     VARCHAR NOT NULL,
    client      VARCHAR NOT NULL,
    started_at  TIMESTAMP NOT NULL,
    ended_at    TIMESTAMP
);
