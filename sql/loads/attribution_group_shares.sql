-- Load a shard's holder-level shares (attribution.pipeline.attribute_groups). Runs before
-- loads/attribution_shares in the same transaction and skips, as it does, a generation that
-- already has shares: a re-delivered shard adds nothing, and a generation's group shares
-- always come from the run that attributed it.
INSERT INTO attribution.group_shares
SELECT $run_id, g.platform_id, g.generation_id, g.rights_holder_id,
       CAST(g.share AS DECIMAL(18, 9)), g.score, g.method
FROM read_parquet($groups_path) AS g
WHERE NOT EXISTS (SELECT 1 FROM attribution.shares AS a
                  WHERE a.platform_id = g.platform_id AND a.generation_id = g.generation_id);
