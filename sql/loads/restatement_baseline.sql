-- At a close: the closed period's own baseline, and the digests this period restated earlier
-- closed periods with (its adjustments are now paid) become their baselines.
INSERT OR REPLACE INTO settlement.restatement_baselines
SELECT $period, $inputs_sha256, $period, $now;
INSERT OR REPLACE INTO settlement.restatement_baselines
SELECT corrects_period, inputs_sha256, period, $now
FROM settlement.restatement_inputs WHERE period = $period;
