-- A period's calculation: royalty pools, then each rights holder's amount, then statement
-- lines, all in exact DECIMAL. Params: $period, $period_start (DATE), $run_id.
-- Results go to temp tables calc_pools, calc_holder_totals, calc_statement_lines; publishing
-- them (settlement_publish) or comparing them with a closed period (settlement_restatement)
-- are separate steps, so a closed period can be recomputed without being touched.
--
-- Money flow, per platform (each generation's amounts go to calc_generations, which
-- settlement_publish stores as settlement.generation_amounts: the one source every file reads):
--   pool         = round(max(sum(revenue x fx x pool_rate + fee), minimum guarantee), 2)
--   output part  = generation's pool share x attribution share   -> the attributed work
--   training part= generation's pool share x residual share      -> spread pro rata over the
--                  model's training manifest (by number of training examples of each work)
--   each work's amount x right weight (publishing/master) x ownership split -> rights holder
-- Amounts stay exact (scale 18) until the end; rounding to the cent happens once per level by
-- the largest-remainder method (ties by id), so holders sum to the pool and lines to holders.
-- DuckDB divides DECIMALs in DOUBLE, so nothing here divides money: pro rata uses HUGEINT.

CREATE OR REPLACE TEMP TABLE calc_contracts AS
SELECT * FROM staging.contracts_in_force($period);

-- Each generation's amounts, once: revenue converted into the contract currency at the period's
-- rate (the exceptions check has already stopped a period with a missing rate), the pool
-- (revenue x pool_rate + fee), the part that follows attribution and the part that does not.
CREATE OR REPLACE TEMP TABLE calc_generations AS
WITH priced AS (
    SELECT g.platform_id, g.generation_id, g.model_version, g.territory, g.revenue_amount, g.revenue_currency,
           c.currency, c.pool_rate, c.fee_per_generation AS fee, c.training_share,
           CASE WHEN g.revenue_currency = c.currency THEN CAST(1 AS DECIMAL(18, 8)) ELSE fx.rate END AS fx_rate
    FROM staging.generations_in($period) AS g
    JOIN calc_contracts AS c USING (platform_id)
    LEFT JOIN ref.fx_rates AS fx
      ON fx.period = $period AND fx.from_currency = g.revenue_currency AND fx.to_currency = c.currency
    WHERE g.revenue_currency = c.currency OR fx.rate IS NOT NULL
),
pooled AS (
    -- revenue_amount widened first: DuckDB multiplies two DECIMAL(18, s) in 64 bits, which
    -- overflowed for any generation earning more than 92,233.72 (10^18 / 10^6 / 10^8).
    SELECT *, CAST(CAST(CAST(CAST(revenue_amount AS DECIMAL(38, 6)) * fx_rate AS DECIMAL(38, 18)) * pool_rate
                        AS DECIMAL(38, 18)) + fee AS DECIMAL(38, 18)) AS pool_exact,
           CAST(CAST(revenue_amount AS DECIMAL(38, 6)) * fx_rate AS DECIMAL(38, 18)) AS revenue
    FROM priced
),
attributed AS (
    SELECT s.platform_id, s.generation_id, sum(s.share) FILTER (WHERE NOT s.is_residual) AS output_share
    FROM staging.shares AS s
    SEMI JOIN pooled AS g USING (platform_id, generation_id)
    GROUP BY ALL
),
split AS (
    SELECT p.*, CAST(p.pool_exact * (1 - p.training_share) AS DECIMAL(38, 18)) AS output_pool_exact,
           coalesce(a.output_share, 0) AS output_share
    FROM pooled AS p
    LEFT JOIN attributed AS a USING (platform_id, generation_id)
)
SELECT $period AS period, platform_id, generation_id, model_version, territory, revenue_amount,
       revenue_currency, fx_rate, revenue, fee, pool_exact, output_pool_exact,
       CAST(output_pool_exact * output_share AS DECIMAL(38, 18)) AS output_exact,
       pool_exact - CAST(output_pool_exact * output_share AS DECIMAL(38, 18)) AS training_exact,
       currency, $run_id AS run_id
FROM split;

-- A minimum guarantee tops the pool up; the top-up has no generation to follow, so it is
-- training royalty of the platform's most used model version in the period.
CREATE OR REPLACE TEMP TABLE calc_pools AS
SELECT $period AS period, g.platform_id, c.contract_id, c.version AS contract_version, c.currency,
       count(*) AS n_generations, CAST(sum(g.revenue) AS DECIMAL(38, 6)) AS revenue, c.pool_rate,
       CAST(round(greatest(sum(g.pool_exact), c.minimum_guarantee), 2) AS DECIMAL(38, 2)) AS pool_amount,
       $run_id AS run_id,
       CAST(sum(g.fee) AS DECIMAL(38, 6)) AS fees, c.training_share, c.minimum_guarantee,
       CAST(greatest(c.minimum_guarantee - sum(g.pool_exact), 0) AS DECIMAL(38, 18)) AS guarantee_top_up,
       mode(g.model_version ORDER BY g.model_version) AS main_model_version
FROM calc_generations AS g
JOIN calc_contracts AS c USING (platform_id)
GROUP BY g.platform_id, c.contract_id, c.version, c.currency, c.pool_rate, c.minimum_guarantee, c.training_share;

-- The output royalty: the part of each generation's pool that follows its attribution, summed
-- per work as it streams (10^8 share rows are never materialised). A generation has one share
-- row per work, so count(*) counts the generations that drew on the work.
CREATE OR REPLACE TEMP TABLE calc_output AS
SELECT g.platform_id, s.work_id,
       -- summed at the product's own scale (27 digits) and rounded once per work: rescaling
       -- every one of 10^8 products costs more than the whole join
       CAST(sum(g.output_pool_exact * s.share) AS DECIMAL(38, 18)) AS output_exact,
       count(*) AS n_generations
FROM calc_generations AS g
JOIN staging.shares AS s USING (platform_id, generation_id)
WHERE NOT s.is_residual
GROUP BY g.platform_id, s.work_id;

-- What attribution did not assign (the residual, the training share, or the whole generation
-- where attribution was rejected) becomes training royalty of the model version that made the
-- generation.
CREATE OR REPLACE TEMP TABLE calc_residual AS
SELECT platform_id, model_version, sum(residual_exact) AS residual_exact
FROM (
    SELECT platform_id, model_version, training_exact AS residual_exact FROM calc_generations
    UNION ALL
    SELECT platform_id, main_model_version, guarantee_top_up FROM calc_pools
)
GROUP BY ALL;
CREATE OR REPLACE TEMP TABLE calc_training AS
WITH manifest AS (
    SELECT model_version, work_id, count(*) AS n_examples,
           sum(count(*)) OVER (PARTITION BY model_version) AS n_total
    FROM ref.training_manifest
    GROUP BY model_version, work_id
)
SELECT r.platform_id, m.work_id,
       -- in units of 1e-12: fine enough for cents, and the products stay inside HUGEINT
       CAST(CAST(
           CAST(CAST(r.residual_exact AS DECIMAL(38, 12)) * CAST(1000000000000 AS DECIMAL(13, 0)) AS HUGEINT)
           * m.n_examples // CAST(m.n_total AS HUGEINT)
       AS DECIMAL(38, 0)) * CAST(0.000000000001 AS DECIMAL(38, 12)) AS DECIMAL(38, 18)) AS amount_exact
FROM calc_residual AS r
JOIN manifest AS m USING (model_version);

CREATE OR REPLACE TEMP TABLE calc_lines AS
WITH per_work AS (
    SELECT platform_id, work_id, sum(output_exact) AS output_exact,
           sum(training_exact) AS training_exact, sum(n_generations) AS n_generations
    FROM (
        SELECT platform_id, work_id, output_exact, CAST(0 AS DECIMAL(38, 18)) AS training_exact, n_generations
        FROM calc_output
        UNION ALL
        SELECT platform_id, work_id, CAST(0 AS DECIMAL(38, 18)), amount_exact, 0 FROM calc_training
    )
    GROUP BY ALL
),
rights AS (
    SELECT platform_id, 'publishing' AS right_type, publishing_weight AS weight, currency FROM calc_contracts
    UNION ALL
    SELECT platform_id, 'master', master_weight, currency FROM calc_contracts
)
SELECT w.platform_id, s.rights_holder_id, w.work_id, r.right_type, r.currency,
       staging.holder_part(w.output_exact, r.weight, s.share) AS output_exact,
       staging.holder_part(w.training_exact, r.weight, s.share) AS training_exact,
       w.n_generations
FROM per_work AS w
JOIN rights AS r USING (platform_id)
JOIN staging.splits_in_force($period) AS s ON s.work_id = w.work_id AND s.right_type = r.right_type;

-- Holders' amounts: the pool in cents, by largest remainder (ties by holder id).
CREATE OR REPLACE TEMP TABLE calc_holder_totals AS
WITH items AS (
    SELECT l.platform_id AS grp, l.rights_holder_id AS tie, l.platform_id, l.rights_holder_id, l.currency,
           sum(l.output_exact + l.training_exact) AS exact,
           any_value(CAST(p.pool_amount * 100 AS HUGEINT)) AS target_cents
    FROM calc_lines AS l
    JOIN calc_pools AS p USING (platform_id)
    GROUP BY ALL
)
SELECT $period AS period, platform_id, rights_holder_id, exact AS exact_amount, amount, currency, $run_id AS run_id
FROM staging.largest_remainder('items');

-- Statement lines: each holder's amount in cents, by largest remainder (ties by work, right).
CREATE OR REPLACE TEMP TABLE calc_statement_lines AS
WITH items AS (
    SELECT {'platform_id': l.platform_id, 'rights_holder_id': l.rights_holder_id} AS grp,
           [l.work_id, l.right_type] AS tie, l.*, l.output_exact + l.training_exact AS exact,
           CAST(h.amount * 100 AS HUGEINT) AS target_cents
    FROM calc_lines AS l
    JOIN calc_holder_totals AS h
      ON h.platform_id = l.platform_id AND h.rights_holder_id = l.rights_holder_id
)
SELECT $period AS period, platform_id, rights_holder_id, work_id, right_type, output_exact, training_exact,
       n_generations, amount, currency, $run_id AS run_id
FROM staging.largest_remainder('items');
