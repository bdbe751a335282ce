-- A holder's disputes as they stand. Params: $rights_holder_id.
SELECT dispute_id, period, platform_id, work_id, right_type, line_amount, currency, reason, filed_by,
       filed_at, status, changed_by, changed_at, status_reason, adjustment_amount, adjustment_period
FROM portal.dispute_state
WHERE rights_holder_id = $rights_holder_id
ORDER BY dispute_id DESC;
