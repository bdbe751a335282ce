-- Load a shard's shares. A generation that already has shares keeps them: a re-delivered
-- shard adds nothing.
INSERT INTO attribution.shares
SELECT $run_id, s.platform_id, s.generation_id, s.work_id, s.is_residual,
       CAST(s.share AS DECIMAL(18, 9)), s.score, s.rank, s.method, s.model_version
FROM read_parquet($shares_path) AS s
WHERE NOT EXISTS (SELECT 1 FROM attribution.shares AS a
                  WHERE a.platform_id = s.platform_id AND a.generation_id = s.generation_id);
