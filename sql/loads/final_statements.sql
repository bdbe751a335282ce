-- The statement files just recorded for a closed period are its final ones (migration 017).
INSERT OR REPLACE INTO settlement.final_statements VALUES ($period, $now);
