-- The period's lifecycle row: status, which calculation, who prepared it and when.
SELECT period, status, run_id, calculated_by, calculated_at, inputs_sha256
FROM settlement.periods
WHERE period = $period;
