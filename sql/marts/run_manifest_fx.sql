-- The FX table of a period as the calculation read it.
SELECT from_currency, to_currency, CAST(rate AS VARCHAR) AS rate, source
FROM ref.fx_rates
WHERE period = $period
ORDER BY ALL;
