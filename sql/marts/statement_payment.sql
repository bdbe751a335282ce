-- How a holder was paid for a period, from the ledger's payout transaction and the payout
-- instruction written with it at the close: the reference, the date, the ledger amount and
-- what the holder receives in its payout currency at the period's rate.
-- Params: $period, $rights_holder_id.
SELECT p.transaction_id AS reference, CAST(p.posted_at AS DATE) AS paid_on, -p.amount AS amount,
       p.currency, i.payout_currency, i.fx_rate, i.fx_source, i.payout_amount
FROM staging.holder_postings AS p
LEFT JOIN settlement.payout_instructions AS i
       ON i.period = p.period AND i.rights_holder_id = p.rights_holder_id AND i.ledger_currency = p.currency
WHERE p.period = $period AND p.rights_holder_id = $rights_holder_id AND p.transaction_id LIKE 'payout/%'
ORDER BY p.transaction_id, p.currency;
