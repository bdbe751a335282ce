-- Records a platform sent for the period that were quarantined at ingest instead of loaded:
-- they are not paid until the platform sends a corrected record. Windows are the ingest's
-- data intervals (UTC); a window that starts in the period belongs to it.
-- Params: $period.
SELECT platform_id, rule, generation_id, reason, window_start, quarantined_at
FROM raw.quarantine
WHERE strftime(window_start, '%Y-%m') = $period
ORDER BY platform_id, rule, generation_id, payload_sha256;
