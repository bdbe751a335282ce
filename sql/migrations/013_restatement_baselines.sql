-- Restate only what changed. For each closed period, the digest of the inputs its amounts were
-- last settled with (at its close, and again whenever a later period that paid corrections for
-- it closes). A calculation restates a closed period only when that digest changed.
CREATE TABLE IF NOT EXISTS settlement.restatement_baselines (
    period        VARCHAR PRIMARY KEY,  -- the closed period
    inputs_sha256 VARCHAR NOT NULL,
    settled_in    VARCHAR NOT NULL,     -- the period whose close fixed this baseline
    updated_at    TIMESTAMP NOT NULL
);

-- The digests an open period's calculation restated closed periods with (replaced with the
-- calculation); they become the baselines when that period closes.
CREATE TABLE IF NOT EXISTS settlement.restatement_inputs (
    period          VARCHAR NOT NULL,  -- the open period that pays the corrections
    corrects_period VARCHAR NOT NULL,
    inputs_sha256   VARCHAR NOT NULL,
    run_id          VARCHAR NOT NULL,
    PRIMARY KEY (period, corrects_period)
);
