-- The period at a glance, per platform: revenue, pool, paid, generations, holders.
SELECT p.period, p.platform_id, p.contract_id, p.contract_version, p.currency, p.n_generations,
       p.revenue, p.pool_rate, p.pool_amount,
       (SELECT coalesce(sum(h.amount), 0) FROM settlement.holder_totals AS h
        WHERE h.period = p.period AND h.platform_id = p.platform_id) AS total_paid,
       (SELECT count(*) FROM settlement.holder_totals AS h
        WHERE h.period = p.period AND h.platform_id = p.platform_id AND h.amount > 0) AS holders_paid,
       p.run_id
FROM settlement.pools AS p
WHERE p.period = $period
ORDER BY p.platform_id;
