-- The first waiver for a pair stands: a second one changes nothing (and is not an error).
INSERT INTO settlement.order_waivers VALUES ($period, $previous_period, $by, $reason, $now)
ON CONFLICT (period, previous_period) DO NOTHING;
