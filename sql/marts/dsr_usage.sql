-- Generations and revenue per platform and territory in a period: the usage side of the
-- DSR-style summary records (every generation pays training royalty to the whole manifest).
WITH settled AS (
    SELECT platform_id, generation_id FROM settlement.settled_generations WHERE period = $period
)
SELECT g.platform_id, g.territory, g.revenue_currency AS currency, count(*) AS usages,
       sum(g.revenue_amount) AS revenue
FROM staging.generations AS g
JOIN settlement.pools AS p ON p.period = $period AND p.platform_id = g.platform_id AND p.currency = g.revenue_currency
WHERE g.period = $period
  AND ((SELECT count(*) FROM settled) = 0
       OR (g.platform_id, g.generation_id) IN (SELECT (platform_id, generation_id) FROM settled))
GROUP BY ALL
ORDER BY g.platform_id, g.territory;
