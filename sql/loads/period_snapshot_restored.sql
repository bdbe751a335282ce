-- A restored snapshot holds its own close row without the digest (the file cannot contain its
-- own digest): record the digest it was restored with. Snapshots published before migration
-- 010 lack the row entirely: add it, naming the restore.
UPDATE settlement.closes SET snapshot_sha256 = $snapshot_sha256
WHERE period = $period AND snapshot_sha256 IS NULL;
INSERT INTO settlement.closes (period, run_id, closed_by, closed_at, snapshot_path, snapshot_sha256)
SELECT $period, p.run_id, 'restored from snapshot', $now, $snapshot_path, $snapshot_sha256
FROM settlement.periods AS p
WHERE p.period = $period
  AND NOT EXISTS (SELECT 1 FROM settlement.closes WHERE period = $period);
INSERT INTO settlement.restores VALUES ($period, $snapshot_path, $snapshot_sha256, $kept_as, $now);
