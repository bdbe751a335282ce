-- Everything that stops a period from being calculated, one row per exception.
-- Params: $period (YYYY-MM), $period_start (DATE).
WITH period_generations AS (
    SELECT * FROM staging.generations_in($period)
),
contracts AS (
    SELECT * FROM staging.contracts_in_force($period)
),
splits AS (
    SELECT * FROM staging.splits_in_force($period)
),
earning_works AS (
    SELECT DISTINCT m.work_id
    FROM ref.training_manifest AS m
    WHERE m.model_version IN (SELECT model_version FROM period_generations)
    UNION
    SELECT DISTINCT s.work_id
    FROM staging.shares AS s
    JOIN period_generations AS g USING (platform_id, generation_id)
    WHERE NOT s.is_residual
)
SELECT 'no_contract' AS rule, g.platform_id AS subject,
       'no contract in force for platform ' || g.platform_id || ' in ' || $period AS detail
FROM period_generations AS g ANTI JOIN contracts AS c USING (platform_id)
GROUP BY g.platform_id

UNION ALL
SELECT 'fx_missing', g.revenue_currency || '/' || c.currency || ' ' || $period,
       'no FX rate ' || g.revenue_currency || '/' || c.currency || ' for ' || $period || ' ('
       || CAST(count(*) AS VARCHAR) || ' generation(s) of ' || g.platform_id || ' need it)'
FROM period_generations AS g JOIN contracts AS c USING (platform_id)
WHERE g.revenue_currency <> c.currency
  AND NOT EXISTS (SELECT 1 FROM ref.fx_rates AS fx WHERE fx.period = $period
                  AND fx.from_currency = g.revenue_currency AND fx.to_currency = c.currency)
GROUP BY g.revenue_currency, c.currency, g.platform_id

UNION ALL
SELECT 'unattributed_generation', g.platform_id || '/' || g.generation_id,
       'generation has neither attribution shares nor a recorded rejection'
FROM staging.unattributed_in($period) AS g

UNION ALL
SELECT 'model_version_unregistered', g.platform_id || '/' || g.model_version,
       'generations use a model version with no registered training manifest'
FROM period_generations AS g
WHERE g.model_version NOT IN (SELECT model_version FROM ref.training_manifest)
GROUP BY g.platform_id, g.model_version

UNION ALL
SELECT 'orphan_work', w.work_id || '/' || rt.right_type,
       'work earns royalties but has no ' || rt.right_type || ' holder from ' || CAST($period_start AS VARCHAR)
       || ' to the end of ' || $period
FROM earning_works AS w
CROSS JOIN (VALUES ('publishing'), ('master')) AS rt(right_type)
WHERE NOT EXISTS (SELECT 1 FROM splits AS s WHERE s.work_id = w.work_id AND s.right_type = rt.right_type)

UNION ALL
-- Rights are settled by the month: a change of ownership inside a month cannot be paid fairly
-- from a monthly pool, so it must be dated on the first of a month.
SELECT 'split_mid_period', s.work_id || '/' || s.right_type || '/' || s.rights_holder_id,
       'split of ' || s.rights_holder_id || ' runs ' || CAST(s.effective_from AS VARCHAR) || ' to '
       || coalesce(CAST(s.effective_to AS VARCHAR), 'open end')
       || ': leaves part of ' || $period || ' without a complete set of holders; date changes on the 1st of a month'
FROM ref.splits AS s
WHERE s.work_id IN (SELECT work_id FROM earning_works)
  AND ((s.effective_from > CAST($period_start AS DATE) AND s.effective_from < CAST($period_start AS DATE) + INTERVAL 1 MONTH
        AND day(s.effective_from) <> 1)
    OR (s.effective_to > CAST($period_start AS DATE) AND s.effective_to < CAST($period_start AS DATE) + INTERVAL 1 MONTH
        AND day(s.effective_to) <> 1))

UNION ALL
SELECT 'split_sum', s.work_id || '/' || s.right_type,
       'ownership splits sum to ' || CAST(sum(s.share) AS VARCHAR) || ', not 1'
FROM splits AS s
WHERE s.work_id IN (SELECT work_id FROM earning_works)
GROUP BY s.work_id, s.right_type
HAVING sum(s.share) <> 1

ORDER BY rule, subject
LIMIT 500;
