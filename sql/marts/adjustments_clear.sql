-- An open period's adjustments are part of its calculation and are replaced with it.
DELETE FROM settlement.adjustments WHERE period = $period;
DELETE FROM settlement.restatement_inputs WHERE period = $period;
