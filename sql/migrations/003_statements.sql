-- Files written for a period as a whole (summary, finance report): their sha256 next to the
-- per-holder ones in settlement.statement_files, so `statements verify` checks every file.
CREATE TABLE IF NOT EXISTS settlement.period_files (
    period VARCHAR NOT NULL,
    kind   VARCHAR NOT NULL,
    path   VARCHAR NOT NULL,  -- relative to the statements root
    sha256 VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    PRIMARY KEY (period, kind)
);
