-- A generation's fingerprint is complete (same transaction as its hashes).
INSERT OR REPLACE INTO provenance.prints VALUES ($platform_id, $generation_id, $kind, $n_hashes, $run_id, $now);
