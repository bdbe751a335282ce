-- A restored snapshot lacks the close row of its own period (written after the copy): add it,
-- naming the restore, unless it is there already.
INSERT INTO settlement.closes
SELECT $period, p.run_id, 'restored from snapshot', $now, $snapshot_path, $snapshot_sha256
FROM settlement.periods AS p
WHERE p.period = $period
  AND NOT EXISTS (SELECT 1 FROM settlement.closes WHERE period = $period);
