SELECT period FROM settlement.periods WHERE status = 'closed' AND period < $period ORDER BY period;
