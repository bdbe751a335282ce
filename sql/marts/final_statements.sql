-- Whether a period's recorded statement files are the final ones (built after its close).
SELECT period, recorded_at FROM settlement.final_statements WHERE period = $period;
