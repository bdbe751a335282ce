-- Corrections of closed periods paid in this period, per corrected period and platform.
SELECT corrects_period, platform_id, currency, count(*) AS holders, sum(amount) AS amount,
       string_agg(DISTINCT reason, '; ' ORDER BY reason) AS reasons
FROM settlement.adjustments
WHERE period = $period
GROUP BY ALL
ORDER BY corrects_period, platform_id, currency;
