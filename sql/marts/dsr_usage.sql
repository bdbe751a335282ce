-- Generations and revenue per platform and territory in a period, in the contract currency
-- (converted as the calculation stored it): the usage side of the DSR-style summary records
-- (every generation pays training royalty to the whole manifest).
SELECT platform_id, territory, currency, count(*) AS usages, CAST(sum(revenue) AS DECIMAL(38, 6)) AS revenue
FROM settlement.generation_amounts
WHERE period = $period
GROUP BY ALL
ORDER BY platform_id, territory;
