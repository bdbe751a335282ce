SELECT period, inputs_sha256 FROM settlement.restatement_baselines;
