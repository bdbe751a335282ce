-- The demo's per-platform lines for a period: what each licensed platform reported and owes.
SELECT p.platform_id,
       (SELECT count(*) FROM staging.generations AS g
        WHERE g.period = $period AND g.platform_id = p.platform_id) AS generations,
       (SELECT count(*) FROM staging.generation_outputs AS o
        JOIN staging.generations AS g USING (platform_id, generation_id)
        WHERE g.period = $period AND o.platform_id = p.platform_id AND o.output_kind = 'audio') AS audio_outputs,
       p.contract_id, p.revenue, p.pool_amount AS pool,
       (SELECT coalesce(sum(amount), 0) FROM settlement.holder_totals AS h
        WHERE h.period = $period AND h.platform_id = p.platform_id) AS paid,
       p.currency
FROM settlement.pools AS p
WHERE p.period = $period
ORDER BY p.platform_id;
