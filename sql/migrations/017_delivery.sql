-- Statement delivery and holder alerts (issue 17): who receives a holder's mails, every mail
-- sent, and the monitoring rules and alerts those mails tell about.
--
-- A delivery is one statement email of one period to one contact. Its id is the idempotency
-- key: sha256(period | holder | email), sent as the mail's Message-ID, so a mail resent after
-- a kill between the SMTP "250" and the row saying so is recognisably the same mail. Every
-- attempt is its own row, written (and committed) before the SMTP conversation starts and
-- finished after it: an attempt with no outcome is one a kill cut short.
CREATE TABLE IF NOT EXISTS ref.holder_contacts (
    rights_holder_id VARCHAR NOT NULL,
    email            VARCHAR NOT NULL,  -- normalised: trimmed, domain lower-cased
    name             VARCHAR NOT NULL,
    added_at         TIMESTAMP NOT NULL,
    PRIMARY KEY (rights_holder_id, email)
);

CREATE TABLE IF NOT EXISTS settlement.deliveries (
    delivery_id      VARCHAR PRIMARY KEY,  -- the idempotency key (see above)
    period           VARCHAR NOT NULL,
    rights_holder_id VARCHAR NOT NULL,
    email            VARCHAR NOT NULL,
    queued_at        TIMESTAMP NOT NULL,
    status           VARCHAR NOT NULL CHECK (status IN ('pending', 'sent', 'bounced', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       VARCHAR,
    sent_at          TIMESTAMP,
    kind             VARCHAR NOT NULL DEFAULT 'statement' CHECK (kind IN ('statement', 'alert')),
    alert_id         VARCHAR  -- kind 'alert': the alert this mail tells about
);

CREATE TABLE IF NOT EXISTS settlement.delivery_attempts (
    delivery_id VARCHAR NOT NULL,
    attempt     INTEGER NOT NULL,  -- 1, 2, ... over every run, retries included
    run_id      VARCHAR NOT NULL,
    started_at  TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,          -- NULL: cut short (kill -9) before the outcome was known
    outcome     VARCHAR CHECK (outcome IN ('sent', 'bounced', 'deferred')),
    smtp_code   INTEGER,
    detail      VARCHAR,
    -- what the mail said, as read from the stored rows when it was composed
    amounts     VARCHAR,
    files_sha256 VARCHAR,
    PRIMARY KEY (delivery_id, attempt)
);

-- Which periods' recorded statement files are the final ones (built after the close): mails
-- quote only these hashes, never a draft's.
CREATE TABLE IF NOT EXISTS settlement.final_statements (
    period      VARCHAR PRIMARY KEY,
    recorded_at TIMESTAMP NOT NULL
);

-- Monitoring rules a holder sets (tributary alerts add), evaluated per period after
-- attribution/calculation (tributary alerts evaluate; the monthly_settlement DAG):
--   share_jump:   a work's share of the period's generations is >= threshold x the previous
--                 period's (and it drew on at least min_generations generations);
--   near_copy:    a generation in which one of the holder's works holds >= threshold of the
--                 whole generation (attribution was confident enough to pay it output royalty);
--   new_platform: a platform draws on the holder's catalog for the first time.
CREATE TABLE IF NOT EXISTS ref.alert_rules (
    rule_id          VARCHAR PRIMARY KEY,
    rights_holder_id VARCHAR NOT NULL,
    kind             VARCHAR NOT NULL CHECK (kind IN ('share_jump', 'near_copy', 'new_platform')),
    threshold        DECIMAL(18, 6) NOT NULL,
    min_generations  INTEGER NOT NULL DEFAULT 1,
    created_at       TIMESTAMP NOT NULL
);

-- An alert is raised once: its id is sha256(rule | period | subject).
CREATE TABLE IF NOT EXISTS settlement.alerts (
    alert_id         VARCHAR PRIMARY KEY,
    rule_id          VARCHAR NOT NULL,
    rights_holder_id VARCHAR NOT NULL,
    kind             VARCHAR NOT NULL,
    period           VARCHAR NOT NULL,
    subject          VARCHAR NOT NULL,  -- the work, generation or platform it is about
    detail           VARCHAR NOT NULL,
    raised_at        TIMESTAMP NOT NULL
);
