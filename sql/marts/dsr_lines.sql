-- DSR-style royalty lines for a period: every statement line (holder x platform x work x
-- right) split over the territories its money came from, in cents that sum exactly to the
-- line. Params: $period.
--
-- A line's money comes from generations (settlement.generation_amounts, as the calculation
-- stored them): its output part from the generations that drew on the work, its training part
-- from every generation of the model (spread over the manifest). Those amounts per territory
-- (nano units, integers) weigh the line's cents, divided by staging.apportion (largest
-- remainder, ties by territory), so the royalty lines of a DSR file sum to the statement.
WITH gens AS (
    SELECT * FROM settlement.generation_amounts WHERE period = $period
),
output_t AS (
    SELECT g.platform_id, s.work_id, g.territory,
           CAST(sum(CAST(g.output_pool_exact * s.share AS DECIMAL(38, 18))) * 1000000000 AS HUGEINT) AS nano,
           count(DISTINCT g.generation_id) AS usages
    FROM gens AS g
    JOIN staging.shares AS s USING (platform_id, generation_id)
    WHERE NOT s.is_residual
    GROUP BY ALL
),
residual_t AS (
    SELECT platform_id, model_version, territory, sum(training_exact) AS residual_exact
    FROM gens
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
items AS (
    SELECT l.platform_id, l.rights_holder_id, l.work_id, l.right_type, l.currency, w.territory, w.usages,
           {'platform_id': l.platform_id, 'rights_holder_id': l.rights_holder_id, 'work_id': l.work_id,
            'right_type': l.right_type} AS grp,
           w.territory AS tie, w.nano AS weight, CAST(l.amount * 100 AS HUGEINT) AS target_cents
    FROM settlement.statement_lines AS l
    JOIN weights AS w USING (platform_id, work_id)
    WHERE l.period = $period AND l.amount <> 0
)
SELECT r.rights_holder_id, r.platform_id, r.work_id, w.iswc, w.isrc, w.title, w.composer,
       r.right_type, r.territory, r.currency, r.usages, r.amount
FROM staging.apportion('items') AS r
JOIN ref.works AS w USING (work_id)
ORDER BY r.rights_holder_id, r.platform_id, r.work_id, r.right_type, r.territory;
