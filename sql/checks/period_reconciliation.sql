-- Gates after calculation: each level must sum exactly to the level above. Any row is a failure.
SELECT 'holders_sum_to_pool' AS gate, p.platform_id AS subject,
       'pool ' || CAST(p.pool_amount AS VARCHAR) || ' but holders sum to '
       || CAST(coalesce(sum(h.amount), 0) AS VARCHAR) AS detail
FROM settlement.pools AS p
LEFT JOIN settlement.holder_totals AS h USING (period, platform_id)
WHERE p.period = $period
GROUP BY p.platform_id, p.pool_amount
HAVING p.pool_amount <> coalesce(sum(h.amount), 0)

UNION ALL
SELECT 'lines_sum_to_holder', h.platform_id || '/' || h.rights_holder_id,
       'holder total ' || CAST(h.amount AS VARCHAR) || ' but lines sum to ' || CAST(sum(l.amount) AS VARCHAR)
FROM settlement.holder_totals AS h
JOIN settlement.statement_lines AS l USING (period, platform_id, rights_holder_id)
WHERE h.period = $period
GROUP BY h.platform_id, h.rights_holder_id, h.amount
HAVING h.amount <> sum(l.amount)

UNION ALL
SELECT 'no_negative_payable', platform_id || '/' || rights_holder_id, 'amount ' || CAST(amount AS VARCHAR)
FROM settlement.holder_totals
WHERE period = $period AND amount < 0;
