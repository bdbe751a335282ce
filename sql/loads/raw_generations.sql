-- Land validated generations of one window. A generation already loaded (same platform and
-- generation id) is left as it is: deliveries are idempotent.
INSERT OR IGNORE INTO raw.generations
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
FROM staged_generations;
