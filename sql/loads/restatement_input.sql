INSERT OR REPLACE INTO settlement.restatement_inputs VALUES ($period, $corrects_period, $inputs_sha256, $run_id);
