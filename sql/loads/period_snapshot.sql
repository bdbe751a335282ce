-- Close, step 3: the published snapshot's digest.
UPDATE settlement.closes SET snapshot_sha256 = $snapshot_sha256, snapshot_path = $snapshot_path
WHERE period = $period;
