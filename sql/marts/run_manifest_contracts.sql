-- Contract versions a period's pools were computed under.
SELECT platform_id, contract_id, contract_version, currency, pool_rate
FROM settlement.pools
WHERE period = $period
ORDER BY ALL;
