INSERT OR REPLACE INTO settlement.statement_files VALUES ($period, $rights_holder_id, $kind, $path, $sha256, $run_id);
