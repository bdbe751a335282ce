-- Landed input files of the windows that hold a period's generations: the latest ingest of
-- each window, with the platform's manifest digest and the landed file's sha256.
SELECT platform_id, CAST(window_start AS VARCHAR) AS window_start, CAST(window_end AS VARCHAR) AS window_end,
       ingest_run_id, manifest_sha256, raw_file, raw_file_sha256, received, quarantined
FROM raw.ingest_windows
WHERE window_end > CAST($period_start AS TIMESTAMP)
  AND window_start < CAST($period_start AS TIMESTAMP) + INTERVAL 1 MONTH
QUALIFY row_number() OVER (PARTITION BY platform_id, window_start, window_end ORDER BY finished_at DESC) = 1
ORDER BY platform_id, window_start;
