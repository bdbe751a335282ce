-- Load a shard's per-generation rule decisions (one row per generation; every share row of a
-- generation carries the same decision). Runs before loads/attribution_shares in the same
-- transaction and keeps the same rule: a generation that already has shares keeps its
-- decision, so a re-delivered shard adds nothing. Rule parameters come from the policy the
-- run recorded (params_json), only the ones the rule reads.
INSERT INTO attribution.share_rules
SELECT $run_id, platform_id, generation_id, rule,
       CASE WHEN rule = 'pvalue' THEN CAST(json_extract(params_json, '$.policy.alpha') AS DOUBLE) END,
       CASE WHEN rule IN ('zscore', 'margin', 'mass')
            THEN CAST(json_extract(params_json, '$.policy.min_confidence') AS DOUBLE) END,
       confidence,
       CASE WHEN rule = 'pvalue' AND NOT isnan(p_value) THEN p_value END,
       CASE WHEN fallback THEN 'fallback' ELSE 'attribution' END
FROM (
    SELECT s.platform_id, s.generation_id,
           any_value(json_extract_string(s.params_json, '$.policy.confidence')) AS rule,
           any_value(s.params_json) AS params_json, any_value(s.confidence) AS confidence,
           any_value(s.p_value) AS p_value, bool_or(s.fallback) AS fallback
    FROM read_parquet($shares_path) AS s
    WHERE NOT EXISTS (SELECT 1 FROM attribution.shares AS a
                      WHERE a.platform_id = s.platform_id AND a.generation_id = s.generation_id)
    GROUP BY s.platform_id, s.generation_id
);
