-- Every generation behind the output royalty of one statement line, with the attribution run,
-- the model version and the contract that priced it.
SELECT generation_id, created_at, revenue_amount, revenue_currency, share, rank,
       attribution_run_id, model_version, contract_id, contract_version, settlement_run_id
FROM audit.statement_line_generations
WHERE period = $period
  AND rights_holder_id = $rights_holder_id
  AND work_id = $work_id
  AND right_type = $right_type
ORDER BY share DESC, generation_id;
