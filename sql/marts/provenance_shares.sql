-- The attribution breakdown a generation was settled with (the shares in force, staging.shares).
SELECT s.work_id, w.title, s.is_residual, s.share, s.method, s.run_id, s.rank
FROM staging.shares AS s
LEFT JOIN ref.works AS w USING (work_id)
WHERE s.platform_id = $platform_id AND s.generation_id = $generation_id
ORDER BY s.is_residual, s.rank, s.work_id;
