SELECT answered_by, reason, answered_at FROM settlement.approval_refusals
WHERE period = $period AND run_id = $run_id ORDER BY answered_at;
