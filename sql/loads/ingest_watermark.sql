-- Move the platform's watermark to the end of a window just reconciled, but only when the
-- window touches the watermark (no gap) and only forwards.
INSERT INTO raw.ingest_watermarks VALUES ($platform_id, $window_end, $run_id, $now)
ON CONFLICT (platform_id) DO UPDATE SET
    watermark = CASE
        WHEN $window_start <= raw.ingest_watermarks.watermark
            THEN greatest(raw.ingest_watermarks.watermark, excluded.watermark)
        ELSE raw.ingest_watermarks.watermark
    END,
    ingest_run_id = excluded.ingest_run_id,
    updated_at = excluded.updated_at;
