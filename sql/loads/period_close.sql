-- Close, step 1 (one transaction with the payouts): remember which generations this period
-- paid for, mark it closed, and write its close row with the snapshot still to publish
-- (snapshot_sha256 NULL until step 3).
INSERT OR IGNORE INTO settlement.settled_generations
SELECT $period, platform_id, generation_id FROM staging.generations_in($period);
UPDATE settlement.periods SET status = 'closed' WHERE period = $period;
INSERT INTO settlement.closes (period, run_id, closed_by, closed_at, snapshot_path, snapshot_sha256, n_settled)
SELECT $period, $run_id, $by, $now, $snapshot_path, NULL,
       (SELECT count(*) FROM settlement.settled_generations WHERE period = $period);
