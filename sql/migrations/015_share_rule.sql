-- Which rule decided each attributed generation's shares, and its statistic: one row per
-- generation, written by the same load as its shares (loads/attribution_share_rules.sql) and
-- from the same shard file, so a statement can say why a generation was paid by attribution
-- or fell back to pro rata, read from what the run decided (never recomputed).
-- Generations attributed before this table existed have no row (their shares say nothing
-- about the rule): the period fingerprint and restatement digests hash these rows where they
-- exist, so an unchanged month keeps its digests and a changed decision changes them.
CREATE TABLE IF NOT EXISTS attribution.share_rules (
    run_id         VARCHAR NOT NULL,
    platform_id    VARCHAR NOT NULL,
    generation_id  VARCHAR NOT NULL,
    rule           VARCHAR NOT NULL,  -- the shares policy's confidence rule: pvalue, zscore, ...
    alpha          DOUBLE,            -- rule pvalue: the contract's significance level
    min_confidence DOUBLE,            -- rules zscore, margin, mass: the threshold
    confidence     DOUBLE,            -- the rule's statistic (pvalue, zscore: the top match's z)
    p_value        DOUBLE,            -- rule pvalue: the statistic's p-value under the run's null
    paid_by        VARCHAR NOT NULL CHECK (paid_by IN ('attribution', 'fallback')),
    PRIMARY KEY (platform_id, generation_id)
);
