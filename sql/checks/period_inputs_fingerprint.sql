-- A digest of everything a period's calculation reads. Same digest, same result: a rerun with
-- unchanged inputs can leave the existing calculation as it is.
WITH period_generations AS (
    SELECT * FROM staging.generations WHERE period <= $period  -- earlier periods: restatements
),
inputs AS (
    SELECT 'g|' || platform_id || '|' || generation_id || '|' || model_version || '|'
           || CAST(revenue_amount AS VARCHAR) || '|' || revenue_currency AS item
    FROM period_generations
    UNION ALL
    SELECT 's|' || s.platform_id || '|' || s.generation_id || '|' || coalesce(s.work_id, '-') || '|'
           || CAST(s.share AS VARCHAR) || '|' || s.run_id
    FROM staging.shares AS s JOIN period_generations AS g USING (platform_id, generation_id)
    UNION ALL
    SELECT 'r|' || platform_id || '|' || generation_id || '|' || run_id FROM attribution.rejections
    UNION ALL
    SELECT 'p|' || work_id || '|' || right_type || '|' || rights_holder_id || '|' || CAST(share AS VARCHAR)
           || '|' || CAST(effective_from AS VARCHAR) || '|' || coalesce(CAST(effective_to AS VARCHAR), '-')
    FROM ref.splits
    UNION ALL
    SELECT 'c|' || contract_id || '|' || CAST(version AS VARCHAR) || '|' || CAST(pool_rate AS VARCHAR)
           || '|' || CAST(effective_from AS VARCHAR) FROM ref.contracts
    UNION ALL
    SELECT 'm|' || model_version || '|' || CAST(example_index AS VARCHAR) || '|' || work_id
    FROM ref.training_manifest
)
SELECT sha256(coalesce(string_agg(item, chr(10) ORDER BY item), '')) AS fingerprint FROM inputs;
