-- Where a model version lives and how its platform's contract says to attribute it.
SELECT m.local_path, c.contract_id, c.version, c.method, c.top_k, c.shares_policy_json,
       c.method_params_json, c.group_method, c.group_params_json
FROM ref.model_versions AS m
JOIN ref.contracts AS c USING (platform_id)
WHERE m.platform_id = $platform_id AND m.model_version = $model_version
QUALIFY row_number() OVER (ORDER BY c.effective_from DESC, c.version DESC) = 1;
