-- Generations attribution could not score, with the reason; they fall back to pro rata.
INSERT INTO attribution.rejections
SELECT $run_id, r.platform_id, r.generation_id, r.reason, $now
FROM staged_rejections AS r
WHERE NOT EXISTS (SELECT 1 FROM attribution.rejections AS a
                  WHERE a.platform_id = r.platform_id AND a.generation_id = r.generation_id);
