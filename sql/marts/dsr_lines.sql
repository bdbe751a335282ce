-- DSR royalty lines for a period: every statement line (holder x platform x work x right),
-- zero lines included so the usages reconcile with the statement, split over the territories
-- its money came from, in cents that sum exactly to the line. Params: $period.
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
terms AS (
    SELECT p.platform_id, c.publishing_weight, c.master_weight
    FROM settlement.pools AS p
    JOIN ref.contracts AS c ON c.contract_id = p.contract_id AND c.version = p.contract_version
    WHERE p.period = $period
),
items AS (
    SELECT l.platform_id, l.rights_holder_id, l.work_id, l.right_type, l.currency, w.territory, w.usages,
           -- the work's money from the territory (all rights and holders) and the holder's part of
           -- it, exact: the DSR's NetRevenue and AllocatedNetRevenue (the cents are `amount`)
           CAST(w.nano AS DECIMAL(38, 0)) * CAST(0.000000001 AS DECIMAL(10, 9)) AS work_exact,
           CAST(staging.holder_part(CAST(w.nano AS DECIMAL(38, 0)) * CAST(0.000000001 AS DECIMAL(10, 9)),
                                    CASE l.right_type WHEN 'publishing' THEN t.publishing_weight ELSE t.master_weight END,
                                    sp.share) AS DECIMAL(38, 9)) AS holder_exact,
           sp.share AS ownership_share,
           {'platform_id': l.platform_id, 'rights_holder_id': l.rights_holder_id, 'work_id': l.work_id,
            'right_type': l.right_type} AS grp,
           w.territory AS tie, w.nano AS weight, CAST(l.amount * 100 AS HUGEINT) AS target_cents
    FROM settlement.statement_lines AS l
    JOIN weights AS w USING (platform_id, work_id)
    JOIN terms AS t USING (platform_id)
    LEFT JOIN staging.splits_in_force($period) AS sp
           ON sp.work_id = l.work_id AND sp.right_type = l.right_type AND sp.rights_holder_id = l.rights_holder_id
    WHERE l.period = $period
)
SELECT r.rights_holder_id, r.platform_id, r.work_id, w.iswc, w.isrc, w.title, w.composer,
       r.right_type, r.ownership_share, r.territory, r.currency, r.usages, r.work_exact, r.holder_exact, r.amount
FROM staging.apportion('items') AS r
JOIN ref.works AS w USING (work_id)
ORDER BY r.rights_holder_id, r.platform_id, r.work_id, r.right_type, r.territory;
