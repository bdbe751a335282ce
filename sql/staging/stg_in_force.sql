-- Reference data in force for a period (a calendar month 'YYYY-MM'): one definition, read by the
-- calculation, its exceptions check, the restatement digest and the per-generation detail.
-- Rights and contracts are settled by the month: what is in force on the 1st is in force for
-- the month (a change dated inside a month is an exception, split_mid_period).
CREATE SCHEMA IF NOT EXISTS staging;

-- The latest version of each platform's contract in force on the 1st of the period.
CREATE OR REPLACE MACRO staging.contracts_in_force(p) AS TABLE
SELECT *
FROM ref.contracts
WHERE effective_from <= CAST(strptime(p, '%Y-%m') AS DATE)
  AND (effective_to IS NULL OR effective_to > CAST(strptime(p, '%Y-%m') AS DATE))
QUALIFY row_number() OVER (PARTITION BY platform_id ORDER BY version DESC) = 1;

-- Ownership splits in force on the 1st of the period.
CREATE OR REPLACE MACRO staging.splits_in_force(p) AS TABLE
SELECT *
FROM ref.splits
WHERE effective_from <= CAST(strptime(p, '%Y-%m') AS DATE)
  AND (effective_to IS NULL OR effective_to > CAST(strptime(p, '%Y-%m') AS DATE));
