-- What a closed period's amounts depend on besides its generations: the contracts and splits in
-- force for it, its FX rates, the registered model versions and the training manifest's size.
-- Small tables only, so checking every closed period on every calculation costs little.
-- Params: $period (a closed period).
WITH items AS (
    SELECT hash('c', contract_id, version, pool_rate, fee_per_generation, minimum_guarantee, training_share,
                publishing_weight, master_weight, currency) AS h
    FROM staging.contracts_in_force($period)
    UNION ALL
    SELECT hash('p', work_id, right_type, rights_holder_id, share) FROM staging.splits_in_force($period)
    UNION ALL
    SELECT hash('x', from_currency, to_currency, rate) FROM ref.fx_rates WHERE period = $period
    UNION ALL
    SELECT hash('m', platform_id, model_version, manifest_sha256) FROM ref.model_versions
    UNION ALL
    SELECT hash('n', count(*)) FROM ref.training_manifest
)
SELECT CAST(count(*) AS VARCHAR) || '|' || CAST(coalesce(bit_xor(h), 0) AS VARCHAR)
       || '|' || CAST(coalesce(sum(CAST(h AS HUGEINT)), 0) AS VARCHAR) AS digest
FROM items;
