-- Before a close: every holder about to be paid in another currency than the ledger's needs
-- the period's rate for that pair. Same balances and threshold as marts/ledger_payouts.
WITH balances AS (
    SELECT substr(p.account, length('holder_payable:') + 1) AS rights_holder_id, p.currency,
           sum(p.amount) AS balance
    FROM ledger.postings AS p
    WHERE p.account LIKE 'holder_payable:%' AND p.period <= $period
    GROUP BY ALL
)
SELECT 'fx_missing' AS rule, b.currency || '/' || h.payout_currency || ' ' || $period AS subject,
       'no FX rate ' || b.currency || '/' || h.payout_currency || ' for ' || $period
       || ' (payout to ' || string_agg(b.rights_holder_id, ', ' ORDER BY b.rights_holder_id) || ')' AS detail
FROM balances AS b
JOIN ref.rights_holders AS h USING (rights_holder_id)
WHERE b.balance > 0 AND b.balance >= h.min_payout
  AND h.payout_currency <> b.currency
  AND NOT EXISTS (SELECT 1 FROM ref.fx_rates AS fx WHERE fx.period = $period
                  AND fx.from_currency = b.currency AND fx.to_currency = h.payout_currency)
GROUP BY b.currency, h.payout_currency
ORDER BY ALL;
