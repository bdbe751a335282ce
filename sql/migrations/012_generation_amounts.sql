-- One source of truth for money: each generation's amounts as the calculation computed them,
-- stored once. Statement lines sum them (output royalty) and the per-generation CSV, the DSR
-- lines and the finance report read them; nothing recomputes a generation's pool elsewhere.
--   revenue        = revenue_amount x fx_rate (contract currency; fx_rate 1 in the same currency)
--   pool_exact     = revenue x pool_rate + fee
--   output_pool    = pool_exact x (1 - training_share)       follows attribution
--   output_exact   = output_pool x (sum of the generation's attribution shares)
--   training_exact = pool_exact - output_exact                spread over the training manifest
CREATE TABLE IF NOT EXISTS settlement.generation_amounts (
    period           VARCHAR NOT NULL,
    platform_id      VARCHAR NOT NULL,
    generation_id    VARCHAR NOT NULL,
    model_version    VARCHAR NOT NULL,
    territory        VARCHAR NOT NULL,
    revenue_amount   DECIMAL(18, 6) NOT NULL,
    revenue_currency VARCHAR NOT NULL,
    fx_rate          DECIMAL(18, 8) NOT NULL,
    revenue          DECIMAL(38, 18) NOT NULL,
    fee              DECIMAL(18, 6) NOT NULL,
    pool_exact       DECIMAL(38, 18) NOT NULL,
    output_pool_exact DECIMAL(38, 18) NOT NULL,
    output_exact     DECIMAL(38, 18) NOT NULL,
    training_exact   DECIMAL(38, 18) NOT NULL,
    currency         VARCHAR NOT NULL,
    run_id           VARCHAR NOT NULL,
    PRIMARY KEY (period, platform_id, generation_id)
);

-- The pool's parts, so the finance report shows them instead of deriving them.
ALTER TABLE settlement.pools ADD COLUMN IF NOT EXISTS fees DECIMAL(38, 6) DEFAULT 0;
ALTER TABLE settlement.pools ADD COLUMN IF NOT EXISTS training_share DECIMAL(9, 6) DEFAULT 0;
ALTER TABLE settlement.pools ADD COLUMN IF NOT EXISTS minimum_guarantee DECIMAL(18, 2) DEFAULT 0;
ALTER TABLE settlement.pools ADD COLUMN IF NOT EXISTS guarantee_top_up DECIMAL(38, 18) DEFAULT 0;
ALTER TABLE settlement.pools ADD COLUMN IF NOT EXISTS main_model_version VARCHAR;
