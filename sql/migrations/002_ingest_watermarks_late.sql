-- Ingest hardening: per-platform watermarks, the manifest each window was reconciled
-- against, and late arrivals for periods already closed.

-- Where a platform's next incremental pull resumes: the end of its contiguous reconciled
-- windows. Moved only by a committed load, in the same transaction as the rows it covers.
CREATE TABLE IF NOT EXISTS raw.ingest_watermarks (
    platform_id   VARCHAR PRIMARY KEY,
    watermark     TIMESTAMP NOT NULL,  -- UTC, exclusive end of the last reconciled window
    ingest_run_id VARCHAR NOT NULL,
    updated_at    TIMESTAMP NOT NULL
);

-- Digest of the manifest (count + revenue per currency) a window was reconciled against:
-- a later manifest with another digest means the platform filed late records.
ALTER TABLE raw.ingest_windows ADD COLUMN IF NOT EXISTS manifest_sha256 VARCHAR;
ALTER TABLE raw.ingest_windows ADD COLUMN IF NOT EXISTS late_flagged BIGINT DEFAULT 0;

-- A generation first loaded after its period was closed. The closed period is never
-- rewritten; settlement books it as an adjustment in adjust_in_period (the first period
-- after the latest closed one) and stamps adjusted_run_id when it has.
CREATE TABLE IF NOT EXISTS raw.late_arrivals (
    platform_id      VARCHAR NOT NULL,
    generation_id    VARCHAR NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    original_period  VARCHAR NOT NULL,  -- YYYY-MM of created_at, status 'closed' when flagged
    adjust_in_period VARCHAR NOT NULL,  -- YYYY-MM that must carry the adjustment
    revenue_amount   DECIMAL(18, 6) NOT NULL,
    revenue_currency VARCHAR NOT NULL,
    ingest_run_id    VARCHAR NOT NULL,
    flagged_at       TIMESTAMP NOT NULL,
    adjusted_run_id  VARCHAR,  -- set by settlement once the adjustment is booked
    PRIMARY KEY (platform_id, generation_id)
);
