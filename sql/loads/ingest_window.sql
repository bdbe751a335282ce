-- One row per ingest of a window: what was received, loaded, skipped and quarantined,
-- next to what the platform's manifest reported (and its digest, to spot late records).
INSERT INTO raw.ingest_windows (
    platform_id, window_start, window_end, ingest_run_id, received, loaded_new, already_loaded,
    quarantined, reported_count, reported_revenue, finished_at, manifest_sha256, late_flagged,
    raw_file, raw_file_sha256
) VALUES (
    $platform_id,
    $window_start,
    $window_end,
    $run_id,
    $received,
    $loaded_new,
    $already_loaded,
    $quarantined,
    $reported_count,
    CAST($reported_revenue AS DECIMAL(18, 6)),
    $now,
    $manifest_sha256,
    $late_flagged,
    $raw_file,
    $raw_file_sha256
);
