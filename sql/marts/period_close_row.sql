-- The close row of a period, if it has one (snapshot_sha256 NULL: snapshot still to publish).
SELECT period, run_id, closed_by, closed_at, snapshot_path, snapshot_sha256
FROM settlement.closes WHERE period = $period;
