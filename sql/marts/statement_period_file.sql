-- One file written for a whole period (summary, finance report) and its sha256.
INSERT OR REPLACE INTO settlement.period_files VALUES ($period, $kind, $path, $sha256, $run_id);
