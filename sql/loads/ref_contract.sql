INSERT OR IGNORE INTO ref.contracts VALUES (
    $contract_id, $version, $platform_id, CAST($effective_from AS DATE), CAST($effective_to AS DATE),
    $currency, CAST($pool_rate AS DECIMAL(9, 6)), CAST($publishing_weight AS DECIMAL(9, 6)),
    CAST($master_weight AS DECIMAL(9, 6)), $method, $top_k
);
