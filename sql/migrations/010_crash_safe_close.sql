-- A close is a sequence of recorded steps so that a kill at any instant can be completed by
-- running the close again: (1) payouts, settled generations, status 'closed' and the close row
-- in one transaction, with snapshot_sha256 still NULL; (2) the snapshot file written aside,
-- fsynced, made read-only and renamed into place; (3) its digest recorded. A close row with a
-- NULL digest means "snapshot not published yet": `tributary period close` (or
-- `tributary period snapshot`) finishes it.
ALTER TABLE settlement.closes ALTER COLUMN snapshot_sha256 DROP NOT NULL;

-- How many generations the close paid for: a closed period whose generation count has grown
-- since has late arrivals (restatement reads this instead of rescanning the month).
ALTER TABLE settlement.closes ADD COLUMN IF NOT EXISTS n_settled BIGINT;

-- Each restore of a snapshot as the live warehouse: which file, its digest, and where the
-- replaced warehouse was kept.
CREATE TABLE IF NOT EXISTS settlement.restores (
    period          VARCHAR NOT NULL,
    snapshot_path   VARCHAR NOT NULL,
    snapshot_sha256 VARCHAR NOT NULL,
    previous_kept_as VARCHAR,
    restored_at     TIMESTAMP NOT NULL
);
