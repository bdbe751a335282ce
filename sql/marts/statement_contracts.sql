-- The contract terms each platform's pool was calculated with in a period, with the platform's
-- display name and the pool's parts as the calculation stored them.
SELECT p.platform_id, coalesce(pf.name, p.platform_id) AS platform_name, p.contract_id,
       p.contract_version, p.currency, p.pool_rate, p.revenue, p.fees, p.training_share,
       p.minimum_guarantee, p.guarantee_top_up, c.publishing_weight, c.master_weight, c.method,
       c.top_k, c.fee_per_generation, p.n_generations, p.pool_amount
FROM settlement.pools AS p
JOIN ref.contracts AS c ON c.contract_id = p.contract_id AND c.version = p.contract_version
LEFT JOIN ref.platforms AS pf ON pf.platform_id = p.platform_id
WHERE p.period = $period
ORDER BY p.platform_id;
