-- Disputes a holder filed that finance has not resolved, in the (rule, subject, detail) shape of
-- checks/period_exceptions: the calculation lists them, and blocks on them when the dispute
-- policy says so (settlement.disputes.policy). Every open dispute counts, whatever period it
-- names: a line of a closed period is corrected in the next open one.
SELECT 'dispute_open' AS rule, 'dispute ' || CAST(dispute_id AS VARCHAR) AS subject,
       rights_holder_id || ' disputes ' || period || ' ' || platform_id || '/' || work_id || '/'
       || right_type || ' (' || CAST(line_amount AS VARCHAR) || ' ' || currency || ') since '
       || strftime(filed_at, '%Y-%m-%d %H:%M') || ' UTC: tributary disputes resolve '
       || CAST(dispute_id AS VARCHAR) AS detail
FROM portal.dispute_state
WHERE status = 'open'
ORDER BY dispute_id;
