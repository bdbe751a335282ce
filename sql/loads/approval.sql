INSERT INTO settlement.approvals VALUES ($period, $run_id, $by, $now);
UPDATE settlement.periods SET status = 'approved' WHERE period = $period;
