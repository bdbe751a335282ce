-- The manifest digest of the latest ingest of exactly this window, if any.
SELECT manifest_sha256
FROM raw.ingest_windows
WHERE platform_id = $platform_id AND window_start = $window_start AND window_end = $window_end
ORDER BY finished_at DESC
LIMIT 1;
