-- Contract terms beyond a revenue share, and FX.
-- pool = max(revenue x pool_rate + generations x fee_per_generation, minimum_guarantee);
-- training_share of the pool is spread pro rata over the training manifest whatever the
-- attribution says (training royalty); the rest follows attribution (output royalty).
ALTER TABLE ref.contracts ADD COLUMN IF NOT EXISTS fee_per_generation DECIMAL(18, 6) DEFAULT 0;
ALTER TABLE ref.contracts ADD COLUMN IF NOT EXISTS minimum_guarantee DECIMAL(18, 2) DEFAULT 0;
ALTER TABLE ref.contracts ADD COLUMN IF NOT EXISTS training_share DECIMAL(9, 6) DEFAULT 0;

-- One rate per currency pair per period, with where it came from. Revenue is converted into
-- the contract currency per generation, before the pool is taken.
CREATE TABLE IF NOT EXISTS ref.fx_rates (
    period        VARCHAR NOT NULL,
    from_currency VARCHAR NOT NULL,
    to_currency   VARCHAR NOT NULL,
    rate          DECIMAL(18, 8) NOT NULL CHECK (rate > 0),
    source        VARCHAR NOT NULL,
    PRIMARY KEY (period, from_currency, to_currency)
);
