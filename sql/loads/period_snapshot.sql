INSERT INTO settlement.closes VALUES ($period, $run_id, $by, $now, $snapshot_path, $snapshot_sha256);
