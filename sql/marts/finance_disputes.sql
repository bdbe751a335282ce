-- A period's disputes for the finance report (portal.period_disputes). Params: $period, $as_of.
SELECT dispute_id, status, period AS line_period, platform_id, rights_holder_id, work_id, right_type,
       line_amount, currency, filed_by, filed_at, changed_by, changed_at, status_reason,
       adjustment_amount, adjustment_period
FROM portal.period_disputes($period, CAST($as_of AS TIMESTAMP))
ORDER BY CASE status WHEN 'open' THEN 0 WHEN 'upheld' THEN 1 ELSE 2 END, dispute_id;
