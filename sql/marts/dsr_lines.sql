-- DSR-style royalty lines for a period: every statement line (holder x platform x work x
-- right) split over the territories its money came from, in cents that sum exactly to the
-- line. Params: $period.
--
-- A line's money comes from generations: its output part from the generations that drew on
-- the work, its training part from every generation of the model (spread over the manifest).
-- Each territory's weight is that money re-computed per territory (nano units, integers);
-- the line's cents are then divided by the largest-remainder method (ties by territory), so
-- the royalty lines of a DSR file sum to the statement to the cent. Integer arithmetic only:
-- DuckDB divides DECIMALs in DOUBLE, and double sums depend on thread scheduling.
WITH settled AS (
    SELECT platform_id, generation_id FROM settlement.settled_generations WHERE period = $period
),
terms AS (
    SELECT platform_id, pool_rate, currency FROM settlement.pools WHERE period = $period
),
gens AS (
    SELECT g.platform_id, g.generation_id, g.model_version, g.territory,
           CAST(g.revenue_amount * t.pool_rate AS DECIMAL(38, 18)) AS pool_exact
    FROM staging.generations AS g
    JOIN terms AS t ON t.platform_id = g.platform_id AND t.currency = g.revenue_currency
    WHERE g.period = $period
      AND ((SELECT count(*) FROM settled) = 0
           OR (g.platform_id, g.generation_id) IN (SELECT (platform_id, generation_id) FROM settled))
),
output_t AS (
    SELECT g.platform_id, s.work_id, g.territory,
           CAST(sum(CAST(g.pool_exact * s.share AS DECIMAL(38, 18))) * 1000000000 AS HUGEINT) AS nano,
           count(DISTINCT g.generation_id) AS usages
    FROM gens AS g
    JOIN staging.shares AS s USING (platform_id, generation_id)
    WHERE NOT s.is_residual
    GROUP BY ALL
),
attributed AS (
    SELECT platform_id, generation_id, sum(share) FILTER (WHERE NOT is_residual) AS output_share
    FROM staging.shares
    GROUP BY ALL
),
residual_t AS (
    SELECT g.platform_id, g.model_version, g.territory,
           sum(CAST(g.pool_exact * (1 - coalesce(a.output_share, 0)) AS DECIMAL(38, 18))) AS residual_exact
    FROM gens AS g
    LEFT JOIN attributed AS a USING (platform_id, generation_id)
    GROUP BY ALL
),
manifest AS (
    SELECT model_version, work_id, count(*) AS n_examples,
           sum(count(*)) OVER (PARTITION BY model_version) AS n_total
    FROM ref.training_manifest
    GROUP BY model_version, work_id
),
training_t AS (
    SELECT r.platform_id, m.work_id, r.territory,
           CAST(r.residual_exact * 1000000000 AS HUGEINT) * m.n_examples // CAST(m.n_total AS HUGEINT) AS nano
    FROM residual_t AS r
    JOIN manifest AS m USING (model_version)
),
weights AS (
    SELECT platform_id, work_id, territory, sum(nano) AS nano, sum(usages) AS usages
    FROM (
        SELECT platform_id, work_id, territory, nano, usages FROM output_t
        UNION ALL
        SELECT platform_id, work_id, territory, nano, 0 FROM training_t
    )
    GROUP BY ALL
),
lines AS (
    SELECT platform_id, rights_holder_id, work_id, right_type, currency,
           CAST(amount * 100 AS HUGEINT) AS cents
    FROM settlement.statement_lines
    WHERE period = $period AND amount <> 0
),
divided AS (
    SELECT l.*, w.territory, w.usages,
           l.cents * w.nano // greatest(sum(w.nano) OVER line, 1) AS base_cents,
           l.cents * w.nano % greatest(sum(w.nano) OVER line, 1) AS remainder
    FROM lines AS l
    JOIN weights AS w USING (platform_id, work_id)
    WINDOW line AS (PARTITION BY l.platform_id, l.rights_holder_id, l.work_id, l.right_type)
),
ranked AS (
    SELECT *,
           cents - sum(base_cents) OVER line AS deficit,
           row_number() OVER (PARTITION BY platform_id, rights_holder_id, work_id, right_type
                              ORDER BY remainder DESC, territory) AS rnk
    FROM divided
    WINDOW line AS (PARTITION BY platform_id, rights_holder_id, work_id, right_type)
)
SELECT r.rights_holder_id, r.platform_id, r.work_id, w.iswc, w.isrc, w.title, w.composer,
       r.right_type, r.territory, r.currency, r.usages,
       CAST(r.base_cents + CASE WHEN r.rnk <= r.deficit THEN 1 ELSE 0 END AS DECIMAL(38, 0))
           * CAST(0.01 AS DECIMAL(3, 2)) AS amount
FROM ranked AS r
JOIN ref.works AS w USING (work_id)
ORDER BY r.rights_holder_id, r.platform_id, r.work_id, r.right_type, r.territory;
