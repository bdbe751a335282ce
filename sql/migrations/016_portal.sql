-- The holder portal (issue 17): holder users, disputes of statement lines with every state
-- change, and the access log. A schema of its own; nothing here is money.
CREATE SCHEMA IF NOT EXISTS portal;

-- A holder organisation (ref.rights_holders) has any number of users. Their password hashes and
-- sessions are secrets, kept out of the warehouse that auditors and snapshots read
-- (portal/credentials.py).
CREATE TABLE IF NOT EXISTS portal.users (
    user_id          VARCHAR PRIMARY KEY,  -- the sign-in name, normalised (lower case, trimmed)
    rights_holder_id VARCHAR NOT NULL,
    display_name     VARCHAR NOT NULL,
    created_by       VARCHAR NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    disabled_at      TIMESTAMP
);

CREATE SEQUENCE IF NOT EXISTS portal.dispute_seq;
-- A holder's dispute of one statement line, as filed; never updated. Its state is the latest
-- row of portal.dispute_events.
CREATE TABLE IF NOT EXISTS portal.disputes (
    dispute_id       BIGINT PRIMARY KEY,
    period           VARCHAR NOT NULL,
    platform_id      VARCHAR NOT NULL,
    rights_holder_id VARCHAR NOT NULL,
    work_id          VARCHAR NOT NULL,
    right_type       VARCHAR NOT NULL,
    line_amount      DECIMAL(38, 2) NOT NULL,  -- the line as the holder saw it when filing
    currency         VARCHAR NOT NULL,
    reason           VARCHAR NOT NULL CHECK (length(reason) BETWEEN 1 AND 2000),
    filed_by         VARCHAR NOT NULL,  -- portal user id
    filed_at         TIMESTAMP NOT NULL
);

-- Every state change of a dispute, append-only: filed (open), then upheld or rejected, with
-- who and when. An upheld dispute may name an adjustment and the open period to pay it in.
CREATE TABLE IF NOT EXISTS portal.dispute_events (
    dispute_id        BIGINT NOT NULL,
    seq               INTEGER NOT NULL,
    status            VARCHAR NOT NULL CHECK (status IN ('open', 'upheld', 'rejected')),
    changed_by        VARCHAR NOT NULL,
    changed_at        TIMESTAMP NOT NULL,
    reason            VARCHAR NOT NULL,
    adjustment_amount DECIMAL(38, 2),
    adjustment_period VARCHAR,
    PRIMARY KEY (dispute_id, seq)
);

-- Who viewed or downloaded what, and every sign-in attempt.
CREATE SEQUENCE IF NOT EXISTS portal.access_seq;
CREATE TABLE IF NOT EXISTS portal.access_log (
    access_id        BIGINT PRIMARY KEY DEFAULT nextval('portal.access_seq'),
    accessed_at      TIMESTAMP NOT NULL,
    user_id          VARCHAR,  -- NULL: not signed in
    rights_holder_id VARCHAR,
    client           VARCHAR NOT NULL,
    action           VARCHAR NOT NULL,  -- view | download | sign_in | sign_in_refused | sign_out | dispute
    path             VARCHAR NOT NULL,
    subject          VARCHAR,  -- the file's sha256, the dispute id, ...
    status           INTEGER NOT NULL
);

-- The moment up to which a period's finance report shows disputes: recorded when its files are
-- built, so `statements verify` re-renders the same bytes while holders go on filing.
CREATE TABLE IF NOT EXISTS portal.report_cutoffs (
    period         VARCHAR PRIMARY KEY,
    disputes_as_of TIMESTAMP NOT NULL
);

-- Batches of the access-log journal already loaded (portal/access_journal.py), recorded in the
-- transaction that loads them, so a batch left behind by a kill is never loaded twice.
CREATE TABLE IF NOT EXISTS portal.access_journal_loads (
    batch VARCHAR PRIMARY KEY,
    rows  INTEGER NOT NULL
);
