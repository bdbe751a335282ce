-- Where a period stands in open -> calculated -> approved -> closed, and who moved it.
SELECT p.period, p.status, p.run_id, p.calculated_by, p.calculated_at, p.inputs_sha256,
       a.approved_by, a.approved_at
FROM settlement.periods AS p
LEFT JOIN settlement.approvals AS a ON a.period = p.period AND a.run_id = p.run_id
WHERE p.period = $period;
