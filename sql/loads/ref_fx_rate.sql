INSERT OR REPLACE INTO ref.fx_rates VALUES ($period, $from_currency, $to_currency, CAST($rate AS DECIMAL(18, 8)), $source);
