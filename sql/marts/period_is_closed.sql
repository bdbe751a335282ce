SELECT EXISTS (SELECT 1 FROM settlement.periods WHERE period = $period AND status = 'closed') AS closed;
