INSERT INTO settlement.approval_refusals VALUES ($period, $run_id, $by, $reason, $now);
