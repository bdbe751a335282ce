-- A month's money per platform, as the calculation stored it: what the approval message, the
-- operator logs and the alert mails show (read here, never recomputed). exact_pool is the pool
-- before rounding to cents: the generations' exact pools plus any minimum-guarantee top-up.
SELECT p.platform_id, p.contract_id, p.currency, p.n_generations, p.revenue,
       coalesce((SELECT sum(g.pool_exact) FROM settlement.generation_amounts AS g
                 WHERE g.period = p.period AND g.platform_id = p.platform_id), 0)
           + coalesce(p.guarantee_top_up, 0) AS exact_pool,
       p.pool_amount AS pool,
       coalesce((SELECT sum(h.amount) FROM settlement.holder_totals AS h
                 WHERE h.period = p.period AND h.platform_id = p.platform_id), 0) AS paid_to_holders,
       (SELECT count(*) FROM settlement.holder_totals AS h
        WHERE h.period = p.period AND h.platform_id = p.platform_id AND h.amount > 0) AS holders_with_earnings,
       coalesce((SELECT sum(a.amount) FROM settlement.adjustments AS a
                 WHERE a.period = p.period AND a.platform_id = p.platform_id), 0) AS adjustments
FROM settlement.pools AS p
WHERE p.period = $period
ORDER BY p.platform_id;
