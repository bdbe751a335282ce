-- The period's close, with its read-only audit snapshot.
SELECT run_id, closed_by, closed_at, snapshot_path, snapshot_sha256
FROM settlement.closes
WHERE period = $period;
