-- Records that broke a rule, with the rule, the reason and the payload as received.
-- The same bad payload sent again is not counted twice.
INSERT OR IGNORE INTO raw.quarantine
SELECT
    platform_id,
    payload_sha256,
    generation_id,
    rule,
    reason,
    raw_payload,
    $window_start,
    $window_end,
    $run_id,
    $now
FROM staged_quarantine;
