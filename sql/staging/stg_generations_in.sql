-- The generations of one period, filtered on created_at's range (not on the derived period
-- column) so DuckDB skips the row groups of other months by their min/max statistics: a
-- month's queries cost the month, not the warehouse's whole history.
CREATE SCHEMA IF NOT EXISTS staging;
CREATE OR REPLACE MACRO staging.generations_in(p) AS TABLE
SELECT *
FROM staging.generations
WHERE created_at >= strptime(p, '%Y-%m')
  AND created_at < strptime(p, '%Y-%m') + INTERVAL 1 MONTH;
