-- How the shares of a period's generations were measured, per platform: the attribution runs
-- in force (latest per generation), their method, model version and parameters, and how many
-- of their generations each rule paid by attribution or sent to the fallback (pro rata), from
-- the decisions the runs stored (attribution.share_rules; 0 and 0 for runs older than it).
SELECT s.platform_id, s.run_id, s.method, s.model_version, r.params_json,
       count(DISTINCT s.generation_id) AS n_generations,
       any_value(d.rule) AS share_rule, any_value(d.alpha) AS alpha,
       any_value(d.min_confidence) AS min_confidence,
       count(DISTINCT s.generation_id) FILTER (WHERE d.paid_by = 'attribution') AS n_paid_by_attribution,
       count(DISTINCT s.generation_id) FILTER (WHERE d.paid_by = 'fallback') AS n_fallback
FROM staging.shares AS s
JOIN staging.generations AS g USING (platform_id, generation_id)
JOIN attribution.runs AS r ON r.run_id = s.run_id
LEFT JOIN attribution.share_rules AS d
  ON d.platform_id = s.platform_id AND d.generation_id = s.generation_id AND d.run_id = s.run_id
WHERE g.period = $period
GROUP BY s.platform_id, s.run_id, s.method, s.model_version, r.params_json
ORDER BY s.platform_id, s.run_id;
