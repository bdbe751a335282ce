SELECT run_id, status, inputs_sha256 FROM settlement.periods WHERE period = $period;
