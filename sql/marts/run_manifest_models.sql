-- Model versions behind a period's generations, with the digests they were registered under.
SELECT g.platform_id, g.model_version, m.model_sha256, m.manifest_sha256, count(*) AS n_generations
FROM staging.generations AS g
LEFT JOIN ref.model_versions AS m USING (platform_id, model_version)
WHERE g.period = $period
GROUP BY ALL
ORDER BY ALL;
