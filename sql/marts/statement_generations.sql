-- Per-generation detail of one holder's output royalty for a period: every generation that
-- drew on one of the holder's works, with the attribution share, the contract's right weight
-- and the holder's split. Amounts are exact (9 decimals), before rounding to the cent; the
-- training royalty is spread over the model's manifest and has no single generation.
-- Params: $period, $period_start (DATE), $rights_holder_id.
WITH settled AS (
    -- once a period is closed, the generations it paid for are fixed; a late one belongs to
    -- an adjustment, not to this statement
    SELECT platform_id, generation_id FROM settlement.settled_generations WHERE period = $period
),
terms AS (
    SELECT p.platform_id, p.pool_rate, p.currency, c.publishing_weight, c.master_weight
    FROM settlement.pools AS p
    JOIN ref.contracts AS c ON c.contract_id = p.contract_id AND c.version = p.contract_version
    WHERE p.period = $period
),
gens AS (
    SELECT g.*, CAST(g.revenue_amount * t.pool_rate AS DECIMAL(38, 18)) AS pool_exact
    FROM staging.generations AS g
    JOIN terms AS t ON t.platform_id = g.platform_id AND t.currency = g.revenue_currency
    WHERE g.period = $period
      AND ((SELECT count(*) FROM settled) = 0
           OR (g.platform_id, g.generation_id) IN (SELECT (platform_id, generation_id) FROM settled))
),
lines AS (
    SELECT DISTINCT platform_id, work_id, right_type
    FROM settlement.statement_lines
    WHERE period = $period AND rights_holder_id = $rights_holder_id
),
splits AS (
    SELECT work_id, right_type, share
    FROM ref.splits
    WHERE rights_holder_id = $rights_holder_id
      AND effective_from <= CAST($period_start AS DATE)
      AND (effective_to IS NULL OR effective_to > CAST($period_start AS DATE))
)
SELECT g.platform_id, g.generation_id, strftime(g.created_at, '%Y-%m-%dT%H:%M:%SZ') AS created_at,
       g.territory, l.work_id, w.iswc, w.isrc, l.right_type,
       s.share AS attribution_share,
       CASE l.right_type WHEN 'publishing' THEN t.publishing_weight ELSE t.master_weight END AS right_weight,
       sp.share AS holder_split,
       CAST(CAST(CAST(g.pool_exact * s.share AS DECIMAL(38, 18))
            * CASE l.right_type WHEN 'publishing' THEN t.publishing_weight ELSE t.master_weight END
            AS DECIMAL(38, 18)) * sp.share AS DECIMAL(38, 9)) AS output_royalty,
       t.currency,
       s.run_id AS attribution_run_id
FROM lines AS l
JOIN terms AS t USING (platform_id)
JOIN staging.shares AS s ON s.platform_id = l.platform_id AND s.work_id = l.work_id AND NOT s.is_residual
JOIN gens AS g ON g.platform_id = s.platform_id AND g.generation_id = s.generation_id
JOIN splits AS sp ON sp.work_id = l.work_id AND sp.right_type = l.right_type
JOIN ref.works AS w ON w.work_id = l.work_id
ORDER BY g.platform_id, g.generation_id, l.work_id, l.right_type;
