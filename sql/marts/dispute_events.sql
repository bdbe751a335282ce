-- Every state change of one dispute, oldest first. Params: $dispute_id.
SELECT seq, status, changed_by, changed_at, reason, adjustment_amount, adjustment_period
FROM portal.dispute_events WHERE dispute_id = $dispute_id ORDER BY seq;
