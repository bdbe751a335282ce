-- Generations with the settlement period they belong to (UTC calendar month of creation).
CREATE SCHEMA IF NOT EXISTS staging;
CREATE OR REPLACE VIEW staging.generations AS
SELECT
    platform_id,
    generation_id,
    model_version,
    created_at,
    strftime(created_at, '%Y-%m') AS period,
    territory,
    revenue_amount,
    revenue_currency
FROM raw.generations;
