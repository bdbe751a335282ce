-- How the shares of a period's generations were measured, per platform: the attribution runs
-- in force (latest per generation), their method, model version and parameters.
SELECT s.platform_id, s.run_id, s.method, s.model_version, r.params_json,
       count(DISTINCT s.generation_id) AS n_generations
FROM staging.shares AS s
JOIN staging.generations AS g USING (platform_id, generation_id)
JOIN attribution.runs AS r ON r.run_id = s.run_id
WHERE g.period = $period
GROUP BY ALL
ORDER BY s.platform_id, s.run_id;
