-- A dispute's next state change; seq follows the last one.
INSERT INTO portal.dispute_events
SELECT $dispute_id, max(seq) + 1, $status, $by, $now, $reason, $adjustment_amount, $adjustment_period
FROM portal.dispute_events WHERE dispute_id = $dispute_id;
