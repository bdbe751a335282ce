-- The contract terms each platform's pool was calculated with in a period.
SELECT p.platform_id, p.contract_id, p.contract_version, p.currency, p.pool_rate,
       c.publishing_weight, c.master_weight, c.method, c.top_k, p.n_generations, p.pool_amount
FROM settlement.pools AS p
JOIN ref.contracts AS c ON c.contract_id = p.contract_id AND c.version = p.contract_version
WHERE p.period = $period
ORDER BY p.platform_id;
