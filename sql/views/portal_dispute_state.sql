-- A dispute as it stands now: the filing with its latest state change (portal.dispute_events).
CREATE OR REPLACE VIEW portal.dispute_state AS
SELECT d.*, e.status, e.changed_by, e.changed_at, e.reason AS status_reason,
       e.adjustment_amount, e.adjustment_period
FROM portal.disputes AS d
JOIN portal.dispute_events AS e USING (dispute_id)
QUALIFY row_number() OVER (PARTITION BY d.dispute_id ORDER BY e.seq DESC) = 1;
