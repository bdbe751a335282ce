-- One shard of the pending generations of a model version: a stable hash of the generation
-- id picks the shard, so shards never overlap and a rerun picks the same generations. The
-- output is the generation's tokens, or its audio file (lake-relative path, checked by
-- sha256 at ingest), whichever the platform delivered (staging.generation_outputs).
SELECT o.generation_id, o.output_kind, o.output_tokens, o.output_audio_path, o.output_audio_sha256
FROM staging.generation_outputs AS o
WHERE o.platform_id = $platform_id
  AND o.model_version = $model_version
  AND hash(o.generation_id) % $n_shards = $shard
  AND NOT EXISTS (SELECT 1 FROM attribution.shares AS s
                  WHERE s.platform_id = o.platform_id AND s.generation_id = o.generation_id)
  AND NOT EXISTS (SELECT 1 FROM attribution.rejections AS r
                  WHERE r.platform_id = o.platform_id AND r.generation_id = o.generation_id)
ORDER BY o.generation_id;
