-- Training examples whose work is not in the catalog, or whose tokens differ from the
-- catalog's copy: attribution would pay for the wrong thing, so these stop registration.
SELECT m.example_index, m.work_id,
       CASE WHEN w.work_id IS NULL THEN 'unknown_work' ELSE 'token_sha256_mismatch' END AS rule
FROM read_parquet($manifest_path) AS m
LEFT JOIN ref.works AS w USING (work_id)
LEFT JOIN read_parquet($tokens_path) AS t USING (work_id)
WHERE w.work_id IS NULL OR t.token_sha256 IS DISTINCT FROM m.token_sha256
ORDER BY m.example_index
LIMIT 20;
