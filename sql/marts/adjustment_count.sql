SELECT count(*) AS n FROM settlement.adjustments WHERE period = $period;
