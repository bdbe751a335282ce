-- One shard of the pending generations of a model version: a stable hash of the generation
-- id picks the shard, so shards never overlap and a rerun picks the same generations.
SELECT g.generation_id, g.output_tokens
FROM raw.generations AS g
WHERE g.platform_id = $platform_id
  AND g.model_version = $model_version
  AND hash(g.generation_id) % $n_shards = $shard
  AND NOT EXISTS (SELECT 1 FROM attribution.shares AS s
                  WHERE s.platform_id = g.platform_id AND s.generation_id = g.generation_id)
  AND NOT EXISTS (SELECT 1 FROM attribution.rejections AS r
                  WHERE r.platform_id = g.platform_id AND r.generation_id = g.generation_id)
ORDER BY g.generation_id;
