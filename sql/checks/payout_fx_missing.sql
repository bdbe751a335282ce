-- Before a close: every holder about to be paid in another currency than the ledger's needs
-- the period's rate for that pair.
SELECT 'fx_missing' AS rule, d.currency || '/' || d.payout_currency || ' ' || $period AS subject,
       'no FX rate ' || d.currency || '/' || d.payout_currency || ' for ' || $period
       || ' (payout to ' || string_agg(d.rights_holder_id, ', ' ORDER BY d.rights_holder_id) || ')' AS detail
FROM staging.payouts_due($period) AS d
WHERE d.payout_currency <> d.currency
  AND NOT EXISTS (SELECT 1 FROM ref.fx_rates AS fx WHERE fx.period = $period
                  AND fx.from_currency = d.currency AND fx.to_currency = d.payout_currency)
GROUP BY d.currency, d.payout_currency
ORDER BY ALL;
