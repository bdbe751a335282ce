-- The period's payouts (posted just before, in the ledger currency) converted into each
-- holder's payout currency at the period's rate; the same currency converts at exactly 1.
INSERT INTO settlement.payout_instructions
SELECT p.period, p.rights_holder_id, p.currency,
       -p.amount AS ledger_amount, h.payout_currency,
       CASE WHEN h.payout_currency = p.currency THEN 1 ELSE fx.rate END AS fx_rate,
       CASE WHEN h.payout_currency = p.currency THEN 'same currency' ELSE fx.source END AS fx_source,
       -- DECIMAL x DECIMAL stays exact in DuckDB; one rounding, half away from zero, to the cent
       CAST(round(-p.amount * CASE WHEN h.payout_currency = p.currency THEN 1 ELSE fx.rate END, 2)
            AS DECIMAL(38, 2)) AS payout_amount,
       $run_id, $now
FROM staging.holder_postings AS p
JOIN ref.rights_holders AS h USING (rights_holder_id)
LEFT JOIN ref.fx_rates AS fx
       ON fx.period = p.period AND fx.from_currency = p.currency AND fx.to_currency = h.payout_currency
WHERE p.period = $period AND p.transaction_id LIKE 'payout/%';
