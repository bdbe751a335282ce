-- Who approved which calculation of the period (the preparer cannot approve).
SELECT a.run_id, a.approved_by, a.approved_at, p.calculated_by AS prepared_by
FROM settlement.approvals AS a
LEFT JOIN settlement.periods AS p USING (period)
WHERE a.period = $period
ORDER BY a.approved_at, a.run_id;
