-- One row per ingest of a window: what was received, loaded, skipped and quarantined,
-- next to what the platform's manifest reported.
INSERT INTO raw.ingest_windows VALUES (
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
    $now
);
