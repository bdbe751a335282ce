INSERT OR IGNORE INTO ref.contracts BY NAME
SELECT $contract_id AS contract_id, $version AS version, $platform_id AS platform_id,
       CAST($effective_from AS DATE) AS effective_from, CAST($effective_to AS DATE) AS effective_to,
       $currency AS currency, CAST($pool_rate AS DECIMAL(9, 6)) AS pool_rate,
       CAST($publishing_weight AS DECIMAL(9, 6)) AS publishing_weight,
       CAST($master_weight AS DECIMAL(9, 6)) AS master_weight, $method AS method, $top_k AS top_k,
       CAST($fee_per_generation AS DECIMAL(18, 6)) AS fee_per_generation,
       CAST($minimum_guarantee AS DECIMAL(18, 2)) AS minimum_guarantee,
       CAST($training_share AS DECIMAL(9, 6)) AS training_share,
       $shares_policy_json AS shares_policy_json, $method_params_json AS method_params_json,
       $group_method AS group_method, $group_params_json AS group_params_json;
