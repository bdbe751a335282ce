-- The money rules that more than one model applies, written once.
CREATE SCHEMA IF NOT EXISTS staging;

-- A right's part of a work's amount, then a holder's part of the right: the contract's right
-- weight, then the holder's ownership split, each product kept at scale 18.
CREATE OR REPLACE MACRO staging.holder_part(amount, weight, split) AS
CAST(CAST(amount * weight AS DECIMAL(38, 18)) * split AS DECIMAL(38, 18));

-- Largest remainder: exact amounts rounded to cents so that each group sums exactly to its
-- target. `items` names a table with columns grp (the group, any type), tie (deterministic
-- tie-break, any orderable type), exact (DECIMAL) and target_cents (the group's total, in
-- cents; the same on every row of a group). Each item gets floor(exact) in cents, and the
-- group's missing cents go one each to the largest remainders (ties by `tie`). Returns the
-- items with `amount` (DECIMAL(38, 2)) added.
CREATE OR REPLACE MACRO staging.largest_remainder(items) AS TABLE
WITH floored AS (
    SELECT *, CAST(floor(exact * 100) AS HUGEINT) AS lr_floor_cents,
           exact * 100 - floor(exact * 100) AS lr_remainder
    FROM query_table(items)
),
ranked AS (
    SELECT *,
           CAST(target_cents AS HUGEINT) - sum(lr_floor_cents) OVER (PARTITION BY grp) AS lr_deficit,
           row_number() OVER (PARTITION BY grp ORDER BY lr_remainder DESC, tie) AS lr_rank
    FROM floored
)
SELECT * EXCLUDE (lr_floor_cents, lr_remainder, lr_deficit, lr_rank),
       CAST(lr_floor_cents + CASE WHEN lr_rank <= lr_deficit THEN 1 ELSE 0 END AS DECIMAL(38, 0))
           * CAST(0.01 AS DECIMAL(3, 2)) AS amount
FROM ranked;

-- Apportionment: a group's cents (target_cents) divided over its items in proportion to
-- integer weights (weight, HUGEINT >= 0), largest remainder first (ties by `tie`). Integer
-- arithmetic only: DuckDB divides DECIMALs in DOUBLE, and double sums depend on thread
-- scheduling. A group whose weights are all 0 is divided equally.
CREATE OR REPLACE MACRO staging.apportion(items) AS TABLE
WITH weighed AS (
    SELECT *, CASE WHEN sum(weight) OVER (PARTITION BY grp) = 0 THEN CAST(1 AS HUGEINT)
                   ELSE CAST(weight AS HUGEINT) END AS ap_weight
    FROM query_table(items)
),
based AS (
    SELECT *, CAST(target_cents AS HUGEINT) * ap_weight // sum(ap_weight) OVER (PARTITION BY grp) AS ap_base,
           CAST(target_cents AS HUGEINT) * ap_weight % sum(ap_weight) OVER (PARTITION BY grp) AS ap_remainder
    FROM weighed
),
ranked AS (
    SELECT *, CAST(target_cents AS HUGEINT) - sum(ap_base) OVER (PARTITION BY grp) AS ap_deficit,
           row_number() OVER (PARTITION BY grp ORDER BY ap_remainder DESC, tie) AS ap_rank
    FROM based
)
SELECT * EXCLUDE (ap_weight, ap_base, ap_remainder, ap_deficit, ap_rank),
       CAST(ap_base + CASE WHEN ap_rank <= ap_deficit THEN 1 ELSE 0 END AS DECIMAL(38, 0))
           * CAST(0.01 AS DECIMAL(3, 2)) AS amount
FROM ranked;
