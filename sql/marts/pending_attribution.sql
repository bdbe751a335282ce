-- Generations still waiting for attribution (no shares, no recorded rejection), per model.
SELECT g.platform_id, g.model_version, count(*) AS n
FROM raw.generations AS g
WHERE NOT EXISTS (SELECT 1 FROM attribution.shares AS s
                  WHERE s.platform_id = g.platform_id AND s.generation_id = g.generation_id)
  AND NOT EXISTS (SELECT 1 FROM attribution.rejections AS r
                  WHERE r.platform_id = g.platform_id AND r.generation_id = g.generation_id)
GROUP BY ALL
ORDER BY ALL;
