-- Model versions a platform's generations name that have no registered training manifest yet.
SELECT DISTINCT g.model_version
FROM raw.generations AS g
ANTI JOIN ref.model_versions AS m USING (platform_id, model_version)
WHERE g.platform_id = $platform_id
ORDER BY 1;
