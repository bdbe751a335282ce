-- Disputes for finance (`tributary disputes list`), newest first; $status NULL lists all.
SELECT dispute_id, period, platform_id, rights_holder_id, work_id, right_type, line_amount, currency,
       reason, filed_by, filed_at, status, changed_by, changed_at, status_reason,
       adjustment_amount, adjustment_period
FROM portal.dispute_state
WHERE CAST($status AS VARCHAR) IS NULL OR status = $status
ORDER BY dispute_id DESC;
