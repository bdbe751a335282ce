SELECT period, snapshot_path, snapshot_sha256, closed_by, closed_at FROM settlement.closes WHERE period = $period;
