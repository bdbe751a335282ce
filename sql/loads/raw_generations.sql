-- Land validated generations of one window. A generation already loaded (same platform and
-- generation id) is left as it is: deliveries are idempotent. Staged rows are unique by
-- generation id; the anti-join (rather than INSERT OR IGNORE) skips the per-row conflict
-- check against the primary key, which was most of the load time of a large file drop.
INSERT INTO raw.generations
SELECT
    platform_id,
    generation_id,
    model_version,
    created_at,
    style,
    prompt,
    output_tokens,
    territory,
    revenue_amount,
    revenue_currency,
    $window_start AS window_start,
    $window_end AS window_end,
    $run_id AS ingest_run_id,
    $now AS loaded_at
FROM staged_generations
WHERE NOT EXISTS (
    SELECT 1 FROM raw.generations AS g
    WHERE g.platform_id = staged_generations.platform_id
      AND g.generation_id = staged_generations.generation_id
);
