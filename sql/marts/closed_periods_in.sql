-- Closed periods of a warehouse file, oldest first.
SELECT period FROM settlement.periods WHERE status = 'closed' ORDER BY period;
