-- A dispute as it stood at a moment: the filing with its latest state change up to `as_of`
-- (events are append-only, so a past moment's answer never changes).
CREATE OR REPLACE MACRO portal.dispute_state_at(as_of) AS TABLE
SELECT d.*, e.status, e.changed_by, e.changed_at, e.reason AS status_reason,
       e.adjustment_amount, e.adjustment_period
FROM portal.disputes AS d
JOIN portal.dispute_events AS e USING (dispute_id)
WHERE e.changed_at <= CAST(as_of AS TIMESTAMP)
QUALIFY row_number() OVER (PARTITION BY d.dispute_id ORDER BY e.seq DESC) = 1;

-- A dispute as it stands now.
CREATE OR REPLACE VIEW portal.dispute_state AS
SELECT * FROM portal.dispute_state_at(TIMESTAMP '9999-12-31 23:59:59');

-- The disputes finance must see with period `p`'s report, as they stood at `as_of` (recorded
-- when the report was built, so a re-render gives the same bytes): every dispute still open then (any earlier period too: a
-- closed period's line is corrected in an open one), those filed on p's lines, those upheld to
-- be paid in p, and those resolved since the previous period was calculated (so each
-- resolution is in exactly one period's report once both are calculated).
CREATE OR REPLACE MACRO portal.period_disputes(p, as_of) AS TABLE
SELECT * FROM portal.dispute_state_at(as_of)
WHERE period <= p
  AND (status = 'open' OR period = p OR adjustment_period = p
       OR changed_at > (SELECT coalesce(max(calculated_at), TIMESTAMP '1970-01-01')
                        FROM settlement.periods WHERE period < p));
