-- Before an SMTP conversation: the attempt exists (committed) with no outcome yet, so a kill
-- mid-conversation leaves a visible, unfinished attempt.
INSERT INTO settlement.delivery_attempts
    (delivery_id, attempt, run_id, started_at, finished_at, outcome, smtp_code, detail, amounts, files_sha256)
SELECT $delivery_id, coalesce(max(attempt), 0) + 1, $run_id, $now, NULL, NULL, NULL, NULL, $amounts, $files_sha256
FROM settlement.delivery_attempts WHERE delivery_id = $delivery_id;
UPDATE settlement.deliveries SET attempts = attempts + 1 WHERE delivery_id = $delivery_id;
