-- What the open period named by an upheld dispute pays this holder as corrections of the
-- disputed line's period on its platform: the rows the calculation stored in
-- settlement.adjustments (restatements of the closed period once its inputs were corrected).
-- Params: $adjustment_period, $period, $platform_id, $rights_holder_id.
SELECT a.period, a.corrects_period, a.amount, a.currency, a.reason, p.status AS period_status
FROM settlement.adjustments AS a
LEFT JOIN settlement.periods AS p ON p.period = a.period
WHERE a.period = $adjustment_period AND a.corrects_period = $period AND a.platform_id = $platform_id
  AND a.rights_holder_id = $rights_holder_id;
