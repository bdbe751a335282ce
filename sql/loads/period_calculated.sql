INSERT OR REPLACE INTO settlement.periods (period, status, run_id, calculated_by, calculated_at, inputs_sha256)
VALUES ($period, 'calculated', $run_id, $by, $now, $fingerprint);
